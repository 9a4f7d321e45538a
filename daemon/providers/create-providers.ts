/** Builds one provider per configured profile. */
import type { ResolvedConfig } from '../config/load.js';
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

export function createProviders(cfg: ResolvedConfig, signer: KeySigner, tuning: ProviderTuning = {}): Map<string, CredentialProvider & { destroy?: () => void }> {
  const out = new Map<string, CredentialProvider & { destroy?: () => void }>();
  for (const [name, p] of cfg.profiles) {
    const oidc = cfg.oidc;
    if (!oidc) throw new Error(`profile ${name}: aws-oidc needs an [oidc] table`);
    out.set(
      name,
      new AwsOidcProvider({
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
      }),
    );
  }
  return out;
}
