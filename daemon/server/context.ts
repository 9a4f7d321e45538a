/** What the route plugins need from the daemon, and nothing more. */
import type { ProviderDescription } from '../providers/types.js';
import type { ProfileRefresher } from '../refresh/profile-refresher.js';
import type { HealthReport } from './health-report.js';
import type { ImdsTokenStore } from './imds-tokens.js';

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
}
