/** `credport status`: the daemon's /health as a table (or JSON). */
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { locateDaemon } from '../daemon-locator.js';
import { askDaemon, expectedDaemonUid, loadCliConfig } from '../shared.js';
import { printHealth } from '../status-report.js';

export { renderStatus } from '../status-report.js';

const HELP = `Usage: credport status [options]

Shows the daemon's state: key, and per profile the credential expiry, last
and next refresh, and the last error. Exit 0 when every profile holds valid
credentials, 1 when one does not, 4 when the daemon is not running.

Options:
  --json             print /health as JSON
  -c, --config PATH  config file
  -h, --help         show this help`;

export const statusCommand: Command = {
  name: 'status',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('status', argv, { json: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const cfg = loadCliConfig(values.config, io);
    // Where the daemon really listens (its runtime file), which a reload of `listen` does not move.
    const { owner, base } = locateDaemon(cfg);
    const reply = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
    if (!reply.reachable) {
      if (owner.state === 'running') {
        throw new CliError(
          `the daemon (pid ${owner.record.pid}) holds ${cfg.daemon.lockFile} but does not answer at ${base} (${reply.reason})`,
          EXIT.daemonDown,
          'it may still be starting; see its log',
        );
      }
      throw new CliError(`the daemon is not running at ${base} (${reply.reason})`, EXIT.daemonDown, "start it with 'credport serve'");
    }
    return printHealth(reply, base, values.json ?? false, io);
  },
};
