/**
 * Who may have what. The uid check is the boundary: credentials and IMDS
 * tokens go only to the daemon's own user and the uids the config lists.
 * `monitor_uids` may read /metrics and the full /health (profile names, role
 * ARNs) but get no credentials. Executable rules are attribution hygiene, not
 * a boundary: a process of an allowed user can pose as any executable.
 */
import type { PeerProcess } from './types.js';

export type AccessClass = 'credentials' | 'monitor' | 'public';

export interface AccessPolicyConfig {
  ownerUid: number;
  allowUids: readonly number[];
  monitorUids: readonly number[];
}

export type Refusal = 'unidentified' | 'uid' | 'executable';

export class AccessPolicy {
  readonly ownerUid: number;
  readonly #credentials: Set<number>;
  readonly #monitor: Set<number>;

  constructor(c: AccessPolicyConfig) {
    this.ownerUid = c.ownerUid;
    this.#credentials = new Set([c.ownerUid, ...c.allowUids]);
    this.#monitor = new Set([...this.#credentials, ...c.monitorUids]);
  }

  allows(cls: AccessClass, uid: number): boolean {
    if (cls === 'public') return true;
    return cls === 'credentials' ? this.#credentials.has(uid) : this.#monitor.has(uid);
  }

  /** A profile's allow_executables: none configured allows any; an unknown process is refused. */
  static executableAllowed(allowed: readonly string[] | undefined, p: PeerProcess | undefined): boolean {
    if (!allowed || allowed.length === 0) return true;
    return p?.exe != null && allowed.includes(p.exe);
  }
}
