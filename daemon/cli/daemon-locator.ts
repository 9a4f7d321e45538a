/**
 * Finds the running daemon the way it really is: its lock (who it is) and
 * its runtime file (where it listens), falling back to the config's listen
 * only when no runtime file vouches for another address.
 */
import type { CliContext } from '../clouds/types.js';
import type { ResolvedConfig } from '../config/load.js';
import { lockOwner, type LockOwner } from '../service/instance-lock.js';
import { readRuntimeFile, runtimeFilePath, type RuntimeInfo } from '../service/runtime-file.js';
import { clientBaseUrl } from './daemon-client.js';

export interface DaemonLocation {
  owner: LockOwner;
  /** Present when the runtime file belongs to the daemon holding the lock. */
  runtime?: RuntimeInfo;
  /** Where to reach it. */
  base: string;
}

export function locateDaemon(cfg: ResolvedConfig): DaemonLocation {
  const owner = lockOwner(cfg.daemon.lockFile);
  const runtime = readRuntimeFile(runtimeFilePath(cfg.daemon.lockFile));
  if (owner.state === 'running' && runtime && runtime.instance === owner.record.instance && runtime.pid === owner.record.pid) {
    return { owner, runtime, base: runtime.url };
  }
  return { owner, base: clientBaseUrl(cfg.daemon.listen) };
}

/** What a cloud's CLI half needs: the config, the environment, and where the daemon really answers. */
export function cliContext(cfg: ResolvedConfig, env: CliContext['env']): CliContext {
  return { config: cfg, env, baseUrl: locateDaemon(cfg).base };
}
