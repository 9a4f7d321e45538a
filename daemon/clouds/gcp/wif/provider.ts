/**
 * Provider `gcp-wif`: the device JWT exchanged at Google STS for a federated access token and, with a
 * service account, that token exchanged at IAM Credentials generateAccessToken for the service
 * account's. Each upstream call has its own short retries (retry.ts); the refresher's backoff covers
 * the rest. The clock skew learnt from Google's Date headers back-dates the JWT's `iat` and shifts
 * generateAccessToken's expireTime into our clock.
 */
import type { KeySigner } from '../../../keys/signer.js';
import { ClockSkew } from '../../../providers/clock-skew.js';
import { ProviderError } from '../../../providers/types.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../../providers/upstream/bounded-fetch.js';
import type { GcpAccessToken } from '../credentials.js';
import { configError } from '../errors.js';
import { CLOUD_PLATFORM_SCOPE } from '../scopes.js';
import { endpointBase } from './endpoint.js';
import type { GoogleCallContext } from './google-call.js';
import { generateAccessToken, IAM_SERVICE } from './impersonation.js';
import { withRetries, type RetryPolicy } from './retry.js';
import { exchangeToken, STS_SERVICE, type FederatedToken } from './sts-exchange.js';
import { SubjectTokenSource, type SubjectToken } from './subject-token.js';

export interface GcpWifProviderOptions {
  signer: KeySigner;
  /** [oidc] issuer: the JWT `iss`. */
  issuer: string;
  /** [oidc] subject, or defaultSubject(signer): the JWT `sub`. */
  subject: string;
  /** The workload identity provider's resource name: STS `audience` and the JWT `aud`. */
  audience: string;
  /** [oidc] token_lifetime_seconds: the JWT's lifetime. */
  tokenLifetimeSeconds: number;
  /** Impersonated with generateAccessToken when given. */
  serviceAccount?: string;
  scopes: string[];
  /** generateAccessToken's lifetime (600-43200; Google allows > 3600 only by org policy). */
  lifetimeSeconds: number;
  /** Default https://sts.googleapis.com. */
  stsEndpoint?: string;
  /** Default https://iamcredentials.googleapis.com. */
  iamCredentialsEndpoint?: string;
  /** Attempts per upstream call for throttling, 5xx, network and deadline failures. Default 3. */
  maxAttempts?: number;
  /** One deadline per upstream call, connect to last body byte (default 10 s). */
  requestTimeoutMs?: number;
  /** Largest answer read (default 256 KiB). */
  maxBodyBytes?: number;
  /** First retry pause in ms (doubles, with jitter). Default 200. */
  retryBaseMs?: number;
  random?: () => number;
  now?: () => number;
}

export interface GcpWifDescription {
  type: 'gcp-wif';
  source: string;
  principal: string;
  audience: string;
}

/** The structural provider interface the core's generic CredentialProvider<C> will have. */
export interface GcpCredentialProvider {
  readonly unattended: boolean;
  fetch(signal?: AbortSignal): Promise<GcpAccessToken>;
  describe(): GcpWifDescription;
}

const AUDIENCE = /^\/\/iam\.googleapis\.com\/(projects\/[^/]+\/locations\/global\/workloadIdentityPools\/[^/]+)\/providers\/[^/]+$/;

/**
 * How IAM names the device when the provider maps google.subject = assertion.sub (docs/setup-gcp.md):
 * principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/SUB.
 */
export function federatedPrincipal(audience: string, subject: string): string {
  const pool = AUDIENCE.exec(audience)?.[1];
  return pool ? `principal://iam.googleapis.com/${pool}/subject/${subject}` : subject;
}

export class GcpWifProvider implements GcpCredentialProvider {
  readonly unattended: boolean;
  readonly #o: GcpWifProviderOptions;
  readonly #sts: string;
  readonly #iam: string;
  readonly #now: () => number;
  readonly #skew = new ClockSkew();
  readonly #subjects: SubjectTokenSource;

  /** Throws ProviderError InvalidConfiguration for settings that can never work. */
  constructor(opts: GcpWifProviderOptions) {
    if (!AUDIENCE.test(opts.audience))
      throw configError(
        `audience ${opts.audience} is not a workload identity provider name (//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER)`,
      );
    if (opts.scopes.length === 0 || opts.scopes.some((s) => !/^[\x21-\x7e]+$/.test(s)))
      throw configError('scopes must be one or more OAuth scopes without spaces');
    if (!Number.isInteger(opts.lifetimeSeconds) || opts.lifetimeSeconds < 600 || opts.lifetimeSeconds > 43200) {
      throw configError(`lifetime_seconds must be a whole number from 600 to 43200, not ${opts.lifetimeSeconds}`);
    }
    if (opts.serviceAccount !== undefined && !/^[^@\s/]+@[^@\s/]+$/.test(opts.serviceAccount))
      throw configError(`service_account ${opts.serviceAccount} is not an email`);
    this.#o = opts;
    this.#sts = endpointBase(opts.stsEndpoint ?? 'https://sts.googleapis.com', 'sts_endpoint');
    this.#iam = endpointBase(opts.iamCredentialsEndpoint ?? 'https://iamcredentials.googleapis.com', 'iamcredentials_endpoint');
    this.#now = opts.now ?? Date.now;
    this.#subjects = new SubjectTokenSource({
      signer: opts.signer,
      issuer: opts.issuer,
      subject: opts.subject,
      audience: opts.audience,
      lifetimeSeconds: opts.tokenLifetimeSeconds,
      skew: this.#skew,
      now: this.#now,
    });
    // A key that needs a person present cannot refresh at 3 a.m.: such profiles refresh on demand.
    this.unattended = opts.signer.describe().userPresence !== true;
  }

  /** The principal the tokens belong to: the service account, or the federated device. */
  get principal(): string {
    return this.#o.serviceAccount ?? federatedPrincipal(this.#o.audience, this.#o.subject);
  }

  /** Google's clock minus ours, in ms, as learnt from its Date headers. */
  get clockSkewMs(): number {
    return this.#skew.ms;
  }

  describe(): GcpWifDescription {
    const sa = this.#o.serviceAccount;
    const source = `STS token exchange at ${new URL(this.#sts).host}${sa ? ` + generateAccessToken for ${sa}` : ''}`;
    return { type: 'gcp-wif', source, principal: this.principal, audience: this.#o.audience };
  }

  /**
   * The device JWT for the daemon's URL-sourced external_account endpoint: Google's client libraries
   * exchange it themselves. The same cached token the provider uses.
   */
  subjectToken(signal?: AbortSignal): Promise<SubjectToken> {
    return this.#subjects.get(signal);
  }

  async fetch(signal?: AbortSignal): Promise<GcpAccessToken> {
    const ctx: GoogleCallContext = {
      limits: {
        deadlineMs: this.#o.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs,
        maxBodyBytes: this.#o.maxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
      },
      skew: this.#skew,
      now: this.#now,
      ...(signal ? { signal } : {}),
    };
    const retry: RetryPolicy = {
      maxAttempts: this.#o.maxAttempts ?? 3,
      baseMs: this.#o.retryBaseMs ?? 200,
      random: this.#o.random ?? Math.random,
      ...(signal ? { signal } : {}),
    };
    const sa = this.#o.serviceAccount;
    // generateAccessToken needs a caller token with cloud-platform (or iam); the user's scopes go to the
    // service account's token. google-auth-library does the same.
    const stsScopes = sa ? [CLOUD_PLATFORM_SCOPE] : this.#o.scopes;
    const federated = await this.#exchange(stsScopes, ctx, retry);
    if (!sa)
      return {
        accessToken: federated.accessToken,
        expiration: federated.expiration,
        scopes: [...this.#o.scopes],
        principal: this.principal,
      };
    const token = await withRetries(
      IAM_SERVICE,
      () =>
        generateAccessToken(
          {
            endpoint: this.#iam,
            serviceAccount: sa,
            scopes: this.#o.scopes,
            lifetimeSeconds: this.#o.lifetimeSeconds,
            federatedToken: federated.accessToken,
          },
          ctx,
        ),
      retry,
    );
    return { accessToken: token.accessToken, expiration: token.expiration, scopes: [...this.#o.scopes], principal: sa };
  }

  async #exchange(scopes: string[], ctx: GoogleCallContext, retry: RetryPolicy): Promise<FederatedToken> {
    // The token is minted (or taken from the cache) outside the retries: a key that fails to sign is
    // not asked again at once (a person may have to touch it each time), and a JWT with minutes to
    // live serves every retry.
    const attempt = async () => {
      const { token } = await this.#subjects.get(ctx.signal);
      return withRetries(
        STS_SERVICE,
        () => exchangeToken({ endpoint: this.#sts, audience: this.#o.audience, scopes, subjectToken: token }, ctx),
        retry,
      );
    };
    try {
      return await attempt();
    } catch (err) {
      // A refusal whose Date header taught us a clock far from the one the JWT was minted with (its iat
      // in Google's future): mint again with the new skew, once.
      if (err instanceof ProviderError && err.upstreamStatus !== undefined && err.upstreamStatus < 500 && this.#subjects.stale) {
        this.#subjects.invalidate();
        return attempt();
      }
      throw err;
    }
  }
}
