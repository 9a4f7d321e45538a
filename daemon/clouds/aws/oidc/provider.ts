/**
 * Provider `aws-oidc`: mint a short-lived JWT with the device key, exchange it
 * at STS AssumeRoleWithWebIdentity (an unsigned call: the JWT is the proof).
 */
import { mintIdentityToken } from '../../../identity/jwt.js';
import type { KeySigner } from '../../../keys/signer.js';
import { isKeyBackendError } from '../../../keys/errors.js';
import { ClockSkew } from '../../../providers/clock-skew.js';
import { localCredentials, stsCallTuning } from '../sts-credentials.js';
import { ProviderError, type CredentialProvider, type ProviderDescription } from '../../../providers/types.js';
import { awsCredentialId, type AwsCredentials } from '../credentials.js';
import { callSts } from '../sts/client.js';
import { stsEndpoint } from '../sts/endpoint.js';
import { type SessionTags, sessionTagsClaim } from './session-tags.js';

export interface AwsOidcProviderOptions {
  signer: KeySigner;
  issuer: string;
  subject: string;
  audience: string;
  tokenLifetimeSeconds: number;
  roleArn: string;
  region: string;
  durationSeconds: number;
  roleSessionName: string;
  stsEndpoint?: string;
  /** Session tags for the JWT's https://aws.amazon.com/tags claim (ABAC: one role for a fleet). */
  sessionTags?: SessionTags;
  /** Attempts inside one refresh (throttling, 5xx, network; sts/retry.ts); the scheduler's backoff covers the rest. */
  maxAttempts?: number;
  /** One deadline per STS attempt, connect to last body byte (default 10 s); the refresher bounds the whole refresh. */
  requestTimeoutMs?: number;
  /** Largest STS answer read (default 256 KiB). */
  maxBodyBytes?: number;
  now?: () => number;
  /** Jitter source for retry delays (tests). */
  random?: () => number;
}

export class AwsOidcProvider implements CredentialProvider<AwsCredentials> {
  readonly credentialId = awsCredentialId;
  readonly unattended: boolean;
  readonly #url: URL;
  readonly #skew = new ClockSkew();

  /** Throws ProviderError InvalidConfiguration for an sts_endpoint that is not an http(s) URL. */
  constructor(private readonly opts: AwsOidcProviderOptions) {
    this.unattended = !opts.signer.describe().userPresence;
    this.#url = stsEndpoint(opts.region, opts.stsEndpoint);
  }

  async fetch(signal?: AbortSignal): Promise<AwsCredentials> {
    let token: string;
    try {
      ({ token } = await mintIdentityToken(this.opts.signer, {
        issuer: this.opts.issuer,
        subject: this.opts.subject,
        audience: this.opts.audience,
        lifetimeSeconds: this.opts.tokenLifetimeSeconds,
        ...(this.opts.sessionTags ? { extraClaims: sessionTagsClaim(this.opts.sessionTags) } : {}),
        ...(this.opts.now ? { now: this.opts.now } : {}),
      }));
    } catch (err) {
      // A hardware key unplugged or locked: keep the backend's code (TOKEN_NOT_PRESENT, PIN_INCORRECT...)
      // so /health says what to fix.
      if (isKeyBackendError(err))
        throw new ProviderError(err.code, `the device key could not sign the identity token: ${err.message}`, true);
      throw err;
    }
    const now = this.opts.now ?? Date.now;
    const out = await callSts({
      action: 'AssumeRoleWithWebIdentity',
      params: {
        RoleArn: this.opts.roleArn,
        RoleSessionName: this.opts.roleSessionName,
        WebIdentityToken: token,
        DurationSeconds: this.opts.durationSeconds,
      },
      url: this.#url,
      region: this.opts.region,
      ...stsCallTuning(this.opts),
      skew: this.#skew,
      now,
      ...(signal ? { signal } : {}),
    });
    return localCredentials(out, this.opts, this.#skew, now);
  }

  describe(): ProviderDescription {
    const endpoint = this.opts.stsEndpoint ?? this.#url.origin;
    return {
      type: 'aws-oidc',
      source: `sts:AssumeRoleWithWebIdentity ${endpoint}`,
      principal: this.opts.roleArn,
      details: { roleArn: this.opts.roleArn, region: this.opts.region },
    };
  }

  destroy(): void {
    // Nothing held: connections belong to node's global agent, shared with every other upstream call.
  }
}
