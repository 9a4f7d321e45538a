/** What the route plugins need from the daemon, and nothing more. */
import type { HandoutEvent } from '../audit/record.js';
import type { ProviderDescription } from '../providers/types.js';
import type { ProfileRefresher } from '../refresh/profile-refresher.js';
import type { HealthReport } from './health-report.js';
import type { ImdsTokenStore } from '../clouds/aws/endpoints/imds-tokens.js';
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
  refreshers: Map<string, ProfileRefresher>;
  descriptions: Map<string, ProviderDescription>;
  defaultProfile: string;
  /** The ECS bearer token, read once at start. */
  ecsToken: string;
  imdsTokens: ImdsTokenStore;
  health: () => HealthReport;
  now: () => number;
  /** Who is on the other end of each connection, and what they may have. */
  access: PeerAccess;
  /** Per profile: allow_executables, when set. */
  executables: Map<string, readonly string[]>;
  audit: HandoutSink;
  metrics: DaemonMetrics;
}
