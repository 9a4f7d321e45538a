/** What the route plugins and endpoint modules need from the daemon, and nothing more. */
import type { HandoutEvent } from '../audit/record.js';
import type { ServedProfiles } from '../profiles/profile-set.js';
import type { HealthReport } from './health-report.js';
import type { DaemonMetrics } from './metrics.js';
import type { PeerAccess } from './peer-gate.js';

/** Where handouts are recorded; `enabled` false means no process lookup is needed for it. */
export interface HandoutSink {
  readonly enabled: boolean;
  /** `times` identical handouts (default 1), the last of them at e.time. */
  record(e: HandoutEvent, times?: number): void;
}

/** Mutable on purpose: a reload swaps profiles in place while the server keeps running. */
export interface ServerContext {
  profiles: ServedProfiles;
  /** The daemon's bearer token (ECS Authorization, `credport auth`), written at start, replaced by `token rotate`. */
  daemonToken: string;
  /** Re-reads the token file if it changed; true when daemonToken is now a new token (token-file-watch.ts). */
  refreshToken?: () => boolean;
  /** Where that token lives; other per-install secrets sit beside it. */
  tokenFile: string;
  health: () => HealthReport;
  now: () => number;
  /** Who is on the other end of each connection, and what they may have. */
  access: PeerAccess;
  audit: HandoutSink;
  metrics: DaemonMetrics;
}
