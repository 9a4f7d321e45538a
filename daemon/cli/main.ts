/** The `credport` command: dispatch, --help, --version, and one-line errors with exit codes. */
import { VERSION } from '../version.js';
import { CliError, EXIT } from './cli-error.js';
import { COMMANDS, type CommandEntry } from './command-list.js';
import { leadingGlobals } from './globals.js';
import { processIo, type CliIo } from './io.js';
import { reportError } from './report-error.js';
import { closest } from '../util/suggest.js';

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `credport ${VERSION}: device-bound identity to short-lived AWS, Google Cloud and Azure credentials, served on localhost

Usage: credport COMMAND [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'credport COMMAND --help' (or 'credport help COMMAND') for a command's options.
--config PATH and --json may come before or after the command.
Config: --config PATH, else $CREDPORT_CONFIG, else $XDG_CONFIG_HOME/credport/config.toml

Exit codes: 0 ok, 1 failure (credentials unavailable, upstream error),
2 usage error, 3 config/key/token file problem, 4 daemon not running.
`;
}

function findCommand(argv: string[]): { command: CommandEntry; rest: string[] } | undefined {
  for (const c of COMMANDS) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command: c, rest: argv.slice(words.length) };
  }
  return undefined;
}

function groupUsage(group: string, members: CommandEntry[]): string {
  const width = Math.max(...members.map((c) => c.name.length));
  return `Usage: credport ${group} SUBCOMMAND [options]

Subcommands:
${members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'credport ${group} SUBCOMMAND --help' for a subcommand's options.
`;
}

function unknownCommand(word: string): CliError {
  const words = new Set(COMMANDS.map((c) => c.name.split(' ')[0]!));
  const near = closest(word, [...words, 'help', 'version']);
  return new CliError(
    `unknown command '${word}'`,
    EXIT.usage,
    `${near ? `did you mean '${near}'? ` : ''}run 'credport --help' for the list`,
  );
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const { globals, rest: words } = leadingGlobals(argv);
  let first = words[0];
  if (first === 'help' && words.length > 1) {
    // `credport help key show` is `credport key show --help`.
    words.splice(0, 1);
    words.push('--help');
    first = words[0];
  }
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout(usage());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    io.stdout(`${VERSION}\n`);
    return EXIT.ok;
  }
  const found = findCommand(words);
  try {
    if (!found) {
      const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
      if (group.length > 0) {
        const sub = words[1];
        if (sub === '--help' || sub === '-h') {
          io.stdout(groupUsage(first, group));
          return EXIT.ok;
        }
        const subs = group.map((c) => c.name.slice(first.length + 1));
        const near = sub !== undefined && !sub.startsWith('-') ? closest(sub, subs) : undefined;
        const what = sub !== undefined && !sub.startsWith('-') ? `unknown subcommand '${first} ${sub}'` : `'${first}' needs a subcommand`;
        throw new CliError(
          `${what}: ${group.map((c) => c.name).join(', ')}`,
          EXIT.usage,
          near ? `did you mean '${first} ${near}'?` : `see 'credport ${first} --help'`,
        );
      }
      throw unknownCommand(first);
    }
    return await (await found.command.load()).run([...globals, ...found.rest], io);
  } catch (err) {
    return reportError(err, io);
  }
}
