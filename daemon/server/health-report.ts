/** The /health document: state per profile, nothing secret. */
import type { ProfileEntry } from '../profiles/profile-set.js';
import type { ProfileStatus } from '../refresh/profile-refresher.js';
import type { CertificateRenewalStatus } from '../providers/types.js';

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
  /** Per profile: type, source, principal, the cloud's details (AWS: roleArn, region), and its state. */
  profiles: Record<string, ProfileHealth>;
}

export type ProfileHealth = { type: string; source: string; principal: string; [detail: string]: unknown } & ProfileStatus & {
    certificate?: CertificateHealth;
  };

export interface CertificateHealth {
  subject: string;
  serial: string;
  notAfter: string;
  daysLeft: number;
  /** Seconds left: days say nothing about a certificate that lives minutes. */
  secondsLeft: number;
  expiresSoon: boolean;
  /** [profiles.X.renewal]: next attempt, last error, consecutive failures. */
  renewal?: CertificateRenewalStatus;
}

export function buildHealthReport(input: {
  version: string;
  startedAt: number;
  now: number;
  key: HealthReport['key'];
  defaultProfile: string;
  profiles: Iterable<ProfileEntry>;
  reload: ReloadState;
  certificateWarningDays?: number;
}): HealthReport {
  const profiles: HealthReport['profiles'] = {};
  const warnings: string[] = [];
  let allValid = true;
  for (const { name, refresher: r, description: d, provider } of input.profiles) {
    const st = r.status();
    let cert;
    try {
      cert = provider.certificateInfo?.();
    } catch {
      cert = undefined; // an unreadable certificate shows up as the profile's refresh error
    }
    let certificate: CertificateHealth | undefined;
    if (cert) {
      const daysLeft = Math.floor((cert.notAfter.getTime() - input.now) / 86_400_000);
      const expiresSoon = daysLeft < (input.certificateWarningDays ?? 30);
      let renewal: CertificateRenewalStatus | undefined;
      try {
        renewal = provider.renewalStatus?.();
      } catch {
        renewal = undefined;
      }
      const secondsLeft = Math.floor((cert.notAfter.getTime() - input.now) / 1000);
      certificate = {
        subject: cert.subject,
        serial: cert.serial,
        notAfter: cert.notAfter.toISOString(),
        daysLeft,
        secondsLeft,
        expiresSoon,
        ...(renewal ? { renewal } : {}),
      };
      if (renewal?.lastError) {
        warnings.push(
          `profile ${name}: certificate renewal (${renewal.method}) failed ${renewal.consecutiveFailures} time(s), last: ${renewal.lastError.code}: ${renewal.lastError.message}; next attempt ${renewal.nextAttempt ?? 'not scheduled'}`,
        );
      }
      if (expiresSoon) {
        warnings.push(
          daysLeft < 0
            ? `profile ${name}: certificate ${cert.subject} (serial ${cert.serial}) expired on ${cert.notAfter.toISOString().slice(0, 10)}`
            : `profile ${name}: certificate ${cert.subject} (serial ${cert.serial}) expires in ${daysLeft} day(s), on ${cert.notAfter.toISOString().slice(0, 10)}`,
        );
      }
    }
    const { details, ...description } = d;
    profiles[name] = { ...description, ...details, ...st, ...(certificate ? { certificate } : {}) };
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
