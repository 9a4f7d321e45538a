/** `credport completion SHELL`: the completion script for bash, zsh or fish. */
import { flagsOf, parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command, CommandEntry } from '../command.js';
import { completionScript, SHELLS, type CompletionCommand, type Shell } from '../completion-scripts.js';
import { closest } from '../../util/suggest.js';

const HELP = `Usage: credport completion bash|zsh|fish

Prints a completion script for commands, subcommands and flags:

  bash:  source <(credport completion bash)       (or save it under
         ~/.local/share/bash-completion/completions/credport)
  zsh:   source <(credport completion zsh)        (after compinit; or save it
         as _credport in a directory on $fpath)
  fish:  credport completion fish > ~/.config/fish/completions/credport.fish

Options:
  -h, --help         show this help`;

/** Words a command takes as its positional argument, where they are a fixed set. */
const POSITIONALS: Record<string, string[]> = { completion: [...SHELLS] };

/** `commands`: the command list, handed over by the list itself (which loads this module). */
export const completionCommand = (commands: () => readonly CommandEntry[]): Command => ({
  name: 'completion',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags('completion', argv, {}, 1);
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const shell = positionals[0];
    if (shell === undefined) throw new CliError('which shell?', EXIT.usage, 'credport completion bash|zsh|fish');
    if (!(SHELLS as readonly string[]).includes(shell)) {
      const near = closest(shell, SHELLS);
      throw new CliError(`no completion for "${shell}": bash, zsh or fish`, EXIT.usage, near ? `did you mean '${near}'?` : undefined);
    }
    const cmds: CompletionCommand[] = [];
    for (const entry of commands()) {
      const flags = await flagsOf(await entry.load());
      const pos = POSITIONALS[entry.name];
      cmds.push({ name: entry.name, summary: entry.summary, flags, ...(pos ? { positionals: pos } : {}) });
    }
    io.stdout(completionScript(shell as Shell, cmds));
    return EXIT.ok;
  },
});
