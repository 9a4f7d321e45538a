/**
 * Finds the running daemon the way it really is: its lock (who it is) and
 * its runtime file (where it listens), falling back to the config's listen
 * only when no runtime file vouches for another address.
 */
import type { ResolvedConfig } from '../config/load.js';
import { lockOwner, type LockOwner } from '../service/instance-lock.js';
import { readRuntimeFile, runtimeFilePath, type RuntimeInfo } from '../service/runtime-file.js';
import { clientBaseUrl } from './shared.js';

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
