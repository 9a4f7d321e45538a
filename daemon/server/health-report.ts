/** The /health document: state per profile, nothing secret. */
import type { CertificateInfo } from '../providers/create-providers.js';
import type { ProviderDescription } from '../providers/types.js';
import type { ProfileRefresher, ProfileStatus } from '../refresh/profile-refresher.js';

export interface ReloadState {
  file: string;
  loadedAt: string;
  /** The last reload that was rejected (the running config was kept), until a reload succeeds. */
  lastError: { message: string; at: string } | null;
  /** Settings changed since start-up that only a restart applies (e.g. daemon.listen: still serving the old address). */
  needsRestart?: string[];
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  version: string;
  uptimeSeconds: number;
  key: { backend: string; location: string; thumbprint: string; userPresence: boolean };
  defaultProfile: string;
  config: ReloadState;
  /** Things to act on soon that do not make the daemon unhealthy yet (certificates about to expire). */
  warnings: string[];
  profiles: Record<string, ProviderDescription & ProfileStatus & { certificate?: CertificateHealth }>;
}

export interface CertificateHealth {
  subject: string;
  serial: string;
  notAfter: string;
  daysLeft: number;
  expiresSoon: boolean;
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
  certificate?: (profile: string) => CertificateInfo | undefined;
  certificateWarningDays?: number;
}): HealthReport {
  const profiles: HealthReport['profiles'] = {};
  const warnings: string[] = [];
  let allValid = true;
  for (const [name, r] of input.refreshers) {
    const d = input.descriptions.get(name);
    if (!d) continue;
    const st = r.status();
    const cert = input.certificate?.(name);
    let certificate: CertificateHealth | undefined;
    if (cert) {
      const daysLeft = Math.floor((cert.notAfter.getTime() - input.now) / 86_400_000);
      const expiresSoon = daysLeft < (input.certificateWarningDays ?? 30);
      certificate = { subject: cert.subject, serial: cert.serial, notAfter: cert.notAfter.toISOString(), daysLeft, expiresSoon };
      if (expiresSoon) {
        warnings.push(
          daysLeft < 0
            ? `profile ${name}: certificate ${cert.subject} (serial ${cert.serial}) expired on ${cert.notAfter.toISOString().slice(0, 10)}`
            : `profile ${name}: certificate ${cert.subject} (serial ${cert.serial}) expires in ${daysLeft} day(s), on ${cert.notAfter.toISOString().slice(0, 10)}`,
        );
      }
    }
    profiles[name] = { ...d, ...st, ...(certificate ? { certificate } : {}) };
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
    warnings,
    profiles,
  };
}
