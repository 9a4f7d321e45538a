/** A gcp-wif profile and the [oidc] identity as GcpWifProvider's options: the one place the names map. */
import { defaultSubject } from '../../../identity/jwt.js';
import type { KeySigner } from '../../../keys/signer.js';
import { configError } from '../errors.js';
import type { GcpWifProfileConfig } from '../schema.js';
import type { GcpWifProviderOptions } from './provider.js';

/** The [oidc] fields the subject token uses (config/schema.ts OidcConfig has them). */
export interface OidcIdentity {
  issuer: string;
  subject?: string;
  token_lifetime_seconds: number;
}

/** The daemon's knobs that are not in the profile (tests lower them). */
export interface GcpTuning {
  maxAttempts?: number;
  requestTimeoutMs?: number;
  maxBodyBytes?: number;
  now?: () => number;
}

export function gcpWifProviderOptions(
  name: string,
  p: GcpWifProfileConfig,
  oidc: OidcIdentity | undefined,
  signer: KeySigner,
  tuning: GcpTuning = {},
): GcpWifProviderOptions {
  if (!oidc) throw configError(`profile ${name}: gcp-wif needs an [oidc] table`);
  return {
    signer,
    issuer: oidc.issuer,
    subject: oidc.subject ?? defaultSubject(signer),
    audience: p.audience,
    tokenLifetimeSeconds: oidc.token_lifetime_seconds,
    ...(p.service_account !== undefined ? { serviceAccount: p.service_account } : {}),
    scopes: p.scopes,
    lifetimeSeconds: p.lifetime_seconds,
    stsEndpoint: p.sts_endpoint,
    iamCredentialsEndpoint: p.iamcredentials_endpoint,
    ...(tuning.maxAttempts !== undefined ? { maxAttempts: tuning.maxAttempts } : {}),
    ...(tuning.requestTimeoutMs !== undefined ? { requestTimeoutMs: tuning.requestTimeoutMs } : {}),
    ...(tuning.maxBodyBytes !== undefined ? { maxBodyBytes: tuning.maxBodyBytes } : {}),
    ...(tuning.now !== undefined ? { now: tuning.now } : {}),
  };
}
