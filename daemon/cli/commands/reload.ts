/** `credport reload`: ask the running daemon to re-read its config (SIGHUP), and say whether it took. */
import { parseFlags } from '../args.js';
import { EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { signalReload } from '../signal-reload.js';
import { loadCliConfig } from '../shared.js';

const HELP = `Usage: credport reload [options]

Validates the config file, then signals the running daemon (SIGHUP) to apply
it. A config the daemon rejects leaves the running one in place; the error is
printed here and shown by 'credport status'.

Options:
  -c, --config PATH  config file
  -h, --help         show this help`;

export const reloadCommand: Command = {
  name: 'reload',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('reload', argv, {});
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    // Validating here first gives the error on this terminal, not only in the daemon log.
    const cfg = loadCliConfig(values.config, io);
    const { pid, file, restart, base } = await signalReload(cfg);
    io.stdout(
      `reloaded ${file} (pid ${pid})${restart.length ? `; restart needed: ${restart.join(', ')} (the daemon keeps serving at ${base} until restarted)` : ''}\n`,
    );
    return EXIT.ok;
  },
};
