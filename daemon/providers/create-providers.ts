/** Builds the provider for a configured profile. */
import type { ResolvedConfig } from '../config/load.js';
import type { ProfileConfig } from '../config/schema.js';
import { defaultSubject } from '../identity/jwt.js';
import type { KeySigner } from '../keys/signer.js';
import { AwsOidcProvider } from './aws-oidc/provider.js';
import { defaultSessionName } from './aws-oidc/session-name.js';
import type { CredentialProvider } from './types.js';

export interface ProviderTuning {
  /** SDK-level attempts per refresh; tests lower it so that faults surface at once. */
  maxAttempts?: number;
  requestTimeoutMs?: number;
  now?: () => number;
}

export type ManagedProvider = CredentialProvider & { destroy?: () => void };

export function createProvider(name: string, p: ProfileConfig, cfg: ResolvedConfig, signer: KeySigner, tuning: ProviderTuning = {}): ManagedProvider {
  const oidc = cfg.oidc;
  if (!oidc) throw new Error(`profile ${name}: aws-oidc needs an [oidc] table`);
  return new AwsOidcProvider({
    signer,
    issuer: oidc.issuer,
    subject: oidc.subject ?? defaultSubject(signer),
    audience: oidc.audience,
    tokenLifetimeSeconds: oidc.token_lifetime_seconds,
    roleArn: p.role_arn,
    region: p.region,
    durationSeconds: p.duration_seconds,
    roleSessionName: p.role_session_name ?? defaultSessionName(signer.thumbprint),
    ...(p.sts_endpoint ? { stsEndpoint: p.sts_endpoint } : {}),
    ...(tuning.maxAttempts !== undefined ? { maxAttempts: tuning.maxAttempts } : {}),
    ...(tuning.requestTimeoutMs !== undefined ? { requestTimeoutMs: tuning.requestTimeoutMs } : {}),
    ...(tuning.now ? { now: tuning.now } : {}),
  });
}

export function createProviders(cfg: ResolvedConfig, signer: KeySigner, tuning: ProviderTuning = {}): Map<string, ManagedProvider> {
  return new Map([...cfg.profiles].map(([name, p]) => [name, createProvider(name, p, cfg, signer, tuning)] as const));
}

/**
 * What a profile's credentials depend on, as a comparable string: a reload
 * refreshes exactly the profiles whose fingerprint changed.
 */
export function profileFingerprint(name: string, cfg: ResolvedConfig): string {
  return JSON.stringify({ profile: cfg.profiles.get(name), oidc: cfg.oidc ?? null, refresh: cfg.refresh });
}
