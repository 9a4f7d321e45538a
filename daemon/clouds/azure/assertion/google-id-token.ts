/**
 * The chained client assertion for devices whose key is P-256 only (the Secure Enclave): Google signs
 * it. The device JWT is exchanged at Google STS for a federated token (the gcp-wif profile, without
 * its impersonation), and that token asks IAM Credentials generateIdToken for an RS256 ID token of the
 * profile's service account with `aud` = the federated credential's audience. Entra trusts it through a
 * federated credential for https://accounts.google.com and the service account's unique id.
 */
import { ClockSkew } from '../../../providers/clock-skew.js';
import { ProviderError } from '../../../providers/types.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../../providers/upstream/bounded-fetch.js';
import { malformed } from '../../../providers/upstream/failures.js';
import type { GoogleCallContext } from '../../gcp/wif/google-call.js';
import { callIamCredentials, IAM_SERVICE } from '../../gcp/wif/iam-credentials-call.js';
import type { GcpWifProvider } from '../../gcp/wif/provider.js';
import type { AssertionSource, ClientAssertion } from './source.js';

const JWT_SHAPE = /^[\w-]{1,4096}\.[\w-]{1,16384}\.[\w-]{1,4096}$/;
/** Google's ID tokens live an hour; a claim of more is not believed. */
const MAX_ID_TOKEN_SECONDS = 3600 + 300;

export interface GoogleIdTokenOptions {
  /** The gcp-wif profile's provider, built without service_account: its fetch gives the federated token. */
  federated: GcpWifProvider;
  /** The gcp-wif profile's name, for messages. */
  profile: string;
  serviceAccount: string;
  /** IAM Credentials base URL, no trailing slash. */
  iamEndpoint: string;
  audience: string;
  requestTimeoutMs?: number;
  maxBodyBytes?: number;
  now: () => number;
}

/** `exp` of a JWT whose signature Entra checks, not us: read only to know when to ask again. */
function expiryOf(token: string, status: number): number {
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    throw malformed(IAM_SERVICE, 'the ID token is not a JWT', status);
  }
  const exp = (claims as { exp?: unknown } | null)?.exp;
  if (typeof exp !== 'number' || !Number.isInteger(exp)) throw malformed(IAM_SERVICE, 'the ID token has no exp', status);
  return exp;
}

export class GoogleIdTokenSource implements AssertionSource {
  readonly unattended: boolean;
  readonly description: string;
  readonly #o: GoogleIdTokenOptions;
  readonly #skew = new ClockSkew();
  #current: ClientAssertion | undefined;

  constructor(o: GoogleIdTokenOptions) {
    this.#o = o;
    this.unattended = o.federated.unattended;
    this.description = `Google ID token of ${o.serviceAccount} (generateIdToken, through gcp-wif profile ${o.profile})`;
  }

  async get(minSeconds: number, signal?: AbortSignal): Promise<ClientAssertion> {
    const now = this.#o.now();
    const cached = this.#current;
    if (cached && cached.expiration.getTime() - now > Math.max(minSeconds, 30 * 60) * 1000) return cached;
    const federated = await this.#o.federated.fetch(signal);
    const ctx: GoogleCallContext = {
      limits: {
        deadlineMs: this.#o.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs,
        maxBodyBytes: this.#o.maxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
      },
      skew: this.#skew,
      now: this.#o.now,
      ...(signal ? { signal } : {}),
    };
    const answer = await callIamCredentials(
      {
        endpoint: this.#o.iamEndpoint,
        serviceAccount: this.#o.serviceAccount,
        method: 'generateIdToken',
        payload: { audience: this.#o.audience, includeEmail: true },
        federatedToken: federated.accessToken,
      },
      ctx,
    );
    let token: unknown;
    try {
      token = (JSON.parse(answer.text) as { token?: unknown } | null)?.token;
    } catch {
      throw malformed(IAM_SERVICE, 'the body is not JSON (truncated?)', answer.status);
    }
    if (typeof token !== 'string' || !JWT_SHAPE.test(token)) throw malformed(IAM_SERVICE, 'no usable token', answer.status);
    const expiration = this.#skew.toLocal(new Date(expiryOf(token, answer.status) * 1000));
    const left = expiration.getTime() - this.#o.now();
    if (left <= 0 || left > MAX_ID_TOKEN_SECONDS * 1000)
      throw new ProviderError(
        'ImplausibleExpiration',
        `${IAM_SERVICE} answered with an ID token expiring at ${expiration.toISOString()}`,
        true,
      );
    this.#current = { token, expiration };
    return this.#current;
  }

  async close(): Promise<void> {
    this.#current = undefined;
  }
}
