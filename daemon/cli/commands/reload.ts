/** `credport reload`: ask the running daemon to re-read its config (SIGHUP), and say whether it took. */
import { runningPid } from '../../service/instance-lock.js';
import type { HealthReport } from '../../server/health-report.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { askDaemon, clientBaseUrl, loadCliConfig } from '../shared.js';

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
    const pid = runningPid(cfg.daemon.lockFile);
    if (pid === undefined) throw new CliError(`no running daemon owns ${cfg.daemon.lockFile}`, EXIT.daemonDown, "start it with 'credport serve'");
    const base = clientBaseUrl(cfg.daemon.listen);
    const before = await askDaemon(base, '/health');
    const since = before.reachable ? (before.body as HealthReport).config?.loadedAt : undefined;
    process.kill(pid, 'SIGHUP');
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await askDaemon(base, '/health');
      if (!now.reachable) continue;
      const state = (now.body as HealthReport).config;
      if (state?.lastError && (!since || state.lastError.at >= since)) {
        throw new CliError(`the daemon rejected the config: ${state.lastError.message}`, EXIT.config);
      }
      if (state && state.loadedAt !== since) {
        io.stdout(`reloaded ${state.file} (pid ${pid})\n`);
        return EXIT.ok;
      }
    }
    throw new CliError(`signalled pid ${pid} but ${base}/health did not show a reload`, EXIT.failure, 'see the daemon log');
  },
};
