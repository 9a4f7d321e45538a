/**
 * Provider `aws-oidc`: mint a short-lived JWT with the device key, exchange it
 * at STS AssumeRoleWithWebIdentity. One STSClient per profile keeps its
 * connection pool across refreshes.
 */
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mintIdentityToken } from '../../../identity/jwt.js';
import type { KeySigner } from '../../../keys/signer.js';
import { isKeyBackendError } from '../../../keys/errors.js';
import { ClockSkew } from '../../../providers/clock-skew.js';
import { credentialsFromSts } from '../sts-credentials.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../../providers/upstream/bounded-fetch.js';
import { checkExpiration } from '../../../providers/upstream/plausibility.js';
import { BoundedSdkHandler } from '../../../providers/upstream/sdk-handler.js';
import { ProviderError, type CredentialProvider, type ProviderDescription } from '../../../providers/types.js';
import { awsCredentialId, type AwsCredentials } from '../credentials.js';
import { mapStsError } from './errors.js';
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
  /** SDK retries inside one refresh attempt (throttling, 5xx); the scheduler's backoff covers the rest. */
  maxAttempts?: number;
  /** One deadline per STS call, connect to last body byte (default 10 s). */
  requestTimeoutMs?: number;
  /** Largest STS answer read (default 256 KiB). */
  maxBodyBytes?: number;
  now?: () => number;
}

export class AwsOidcProvider implements CredentialProvider<AwsCredentials> {
  readonly credentialId = awsCredentialId;
  readonly unattended: boolean;
  readonly #client: STSClient;
  readonly #skew = new ClockSkew();

  constructor(private readonly opts: AwsOidcProviderOptions) {
    this.unattended = !opts.signer.describe().userPresence;
    this.#client = new STSClient({
      region: opts.region,
      ...(opts.stsEndpoint ? { endpoint: opts.stsEndpoint } : {}),
      maxAttempts: opts.maxAttempts ?? 3,
      requestHandler: new BoundedSdkHandler('STS', {
        deadlineMs: opts.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs,
        maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
      }),
      // The call is unsigned; an explicit empty provider stops the SDK from
      // searching the environment (which might even point back at this daemon).
      credentials: async () => {
        throw new Error('AssumeRoleWithWebIdentity is unsigned; no credentials are used');
      },
    });
    this.#skew.watch(this.#client, opts.now ?? Date.now);
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
    let out;
    try {
      out = await this.#client.send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: this.opts.roleArn,
          RoleSessionName: this.opts.roleSessionName,
          WebIdentityToken: token,
          DurationSeconds: this.opts.durationSeconds,
        }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (err) {
      throw mapStsError(err);
    }
    const c = credentialsFromSts(out.Credentials, this.opts.roleArn, out.AssumedRoleUser?.Arn, out.$metadata.httpStatusCode);
    const expiration = this.#skew.toLocal(c.expiration);
    checkExpiration('STS', expiration, (this.opts.now ?? Date.now)(), this.opts.durationSeconds);
    return { ...c, expiration };
  }

  describe(): ProviderDescription {
    const endpoint = this.opts.stsEndpoint ?? `https://sts.${this.opts.region}.amazonaws.com`;
    return {
      type: 'aws-oidc',
      source: `sts:AssumeRoleWithWebIdentity ${endpoint}`,
      principal: this.opts.roleArn,
      details: { roleArn: this.opts.roleArn, region: this.opts.region },
    };
  }

  destroy(): void {
    this.#client.destroy();
  }
}
