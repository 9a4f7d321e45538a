/**
 * Signals the running daemon to reload (SIGHUP) and waits until its /health shows the reload, or
 * the error it rejected the config with. Shared by `reload`, `token rotate` and `key rotate`.
 */
import type { ResolvedConfig } from '../config/load.js';
import type { HealthReport } from '../server/health-report.js';
import { CliError, EXIT } from './cli-error.js';
import { locateDaemon } from './daemon-locator.js';
import { askDaemon, expectedDaemonUid } from './shared.js';

export interface Reloaded {
  pid: number;
  file: string;
  restart: string[];
  base: string;
}

/** Whether a daemon owns the config's lock at all (a CLI that changes files may then skip the signal). */
export function daemonRunning(cfg: ResolvedConfig): boolean {
  return locateDaemon(cfg).owner.state !== 'none';
}

export async function signalReload(cfg: ResolvedConfig): Promise<Reloaded> {
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
      return { pid, file: state.file, restart: state.needsRestart ?? [], base };
    }
  }
  throw new CliError(`signalled pid ${pid} but ${base}/health did not show a reload`, EXIT.failure, 'see the daemon log');
}
