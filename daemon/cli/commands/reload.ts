/** `credport reload`: ask the running daemon to re-read its config (SIGHUP), and say whether it took. */
import type { HealthReport } from '../../server/health-report.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { locateDaemon } from '../daemon-locator.js';
import { askDaemon, expectedDaemonUid, loadCliConfig } from '../shared.js';

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
    const { owner, base } = locateDaemon(cfg);
    const lock = cfg.daemon.lockFile;
    if (owner.state === 'none') throw new CliError(`no running daemon owns ${lock}`, EXIT.daemonDown, "start it with 'credport serve'");
    // A signal goes only to a process proven to be the daemon that wrote the lock: after a crash
    // and a reboot its pid may belong to any program, which SIGHUP would kill.
    if (owner.state === 'stale') {
      throw new CliError(
        `the lock ${lock} names pid ${owner.record.pid}, which is not the credport daemon that wrote it (it exited, and the pid is gone or reused); not signalling it`,
        EXIT.daemonDown,
        "start the daemon with 'credport serve'; it replaces the stale lock",
      );
    }
    if (!owner.proven) {
      throw new CliError(
        `cannot prove that pid ${owner.record.pid} (lock ${lock}) is credport on this system; not signalling it`,
        EXIT.failure,
        'restart the daemon instead',
      );
    }
    const pid = owner.record.pid;
    const before = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
    const since = before.reachable ? (before.body as HealthReport).config?.loadedAt : undefined;
    process.kill(pid, 'SIGHUP');
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
      if (!now.reachable) continue;
      const state = (now.body as HealthReport).config;
      if (state?.lastError && (!since || state.lastError.at >= since)) {
        throw new CliError(`the daemon rejected the config: ${state.lastError.message}`, EXIT.config);
      }
      if (state && state.loadedAt !== since) {
        const restart = state.needsRestart?.length
          ? `; restart needed: ${state.needsRestart.join(', ')} (the daemon keeps serving at ${base} until restarted)`
          : '';
        io.stdout(`reloaded ${state.file} (pid ${pid})${restart}\n`);
        return EXIT.ok;
      }
    }
    throw new CliError(`signalled pid ${pid} but ${base}/health did not show a reload`, EXIT.failure, 'see the daemon log');
  },
};
