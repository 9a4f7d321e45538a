/** The /health document: state per profile, nothing secret. */
import type { ProviderDescription } from '../providers/types.js';
import type { ProfileRefresher, ProfileStatus } from '../refresh/profile-refresher.js';

export interface ReloadState {
  file: string;
  loadedAt: string;
  /** The last reload that was rejected (the running config was kept), until a reload succeeds. */
  lastError: { message: string; at: string } | null;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  version: string;
  uptimeSeconds: number;
  key: { backend: string; location: string; thumbprint: string; userPresence: boolean };
  defaultProfile: string;
  config: ReloadState;
  profiles: Record<string, ProviderDescription & ProfileStatus>;
}

export function buildHealthReport(input: {
  version: string;
  startedAt: number;
  now: number;
  key: HealthReport['key'];
  defaultProfile: string;
  refreshers: ReadonlyMap<string, ProfileRefresher>;
  descriptions: ReadonlyMap<string, ProviderDescription>;
  reload: ReloadState;
}): HealthReport {
  const profiles: HealthReport['profiles'] = {};
  let allValid = true;
  for (const [name, r] of input.refreshers) {
    const d = input.descriptions.get(name);
    if (!d) continue;
    const st = r.status();
    profiles[name] = { ...d, ...st };
    // A profile whose key needs a person present is fetched on demand: holding nothing
    // between requests is its normal state, not a fault.
    const idleOnDemand = st.refresh === 'on-demand' && st.lastError === null;
    if (!r.hasValidCredentials() && !idleOnDemand) allValid = false;
  }
  return {
    status: allValid ? 'ok' : 'degraded',
    version: input.version,
    uptimeSeconds: Math.floor((input.now - input.startedAt) / 1000),
    key: input.key,
    defaultProfile: input.defaultProfile,
    config: input.reload,
    profiles,
  };
}
