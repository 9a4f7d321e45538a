/**
 * Provider `azure-federated`: a client assertion (credport's RS256 JWT, or a Google ID token) for one
 * Entra access token per configured scope, each a client_credentials request at the tenant's v2.0
 * token endpoint. The refresher renews them together, before the first expires; each request has its
 * own short retries.
 */
import { ProviderError } from '../../../providers/types.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../../providers/upstream/bounded-fetch.js';
import { withRetries } from '../../gcp/wif/retry.js';
import type { AssertionSource } from '../assertion/source.js';
import { type AzureAccessToken, type AzureCredentials, resourceOf } from '../credentials.js';
import { FILE_ASSERTION_SECONDS, writeFederatedToken } from '../federated-token-file.js';
import { ENTRA_SERVICE } from './errors.js';
import { type EntraCallContext, requestToken, tokenUrl } from './token-request.js';

export interface AzureFederatedOptions {
  assertion: AssertionSource;
  tenantId: string;
  clientId: string;
  scopes: readonly string[];
  authority: string;
  /** Where the federated token file is kept, when the profile asks for one. */
  federatedTokenFile?: string;
  maxAttempts?: number;
  requestTimeoutMs?: number;
  maxBodyBytes?: number;
  retryBaseMs?: number;
  random?: () => number;
  now?: () => number;
}

export class AzureFederatedProvider {
  readonly #o: AzureFederatedOptions;
  readonly #url: string;
  readonly #now: () => number;

  constructor(o: AzureFederatedOptions) {
    this.#o = o;
    this.#url = tokenUrl(o.authority, o.tenantId);
    this.#now = o.now ?? Date.now;
  }

  get unattended(): boolean {
    return this.#o.assertion.unattended;
  }

  get tokenUrl(): string {
    return this.#url;
  }

  describe() {
    return {
      type: 'azure-federated',
      source: `client_credentials at ${new URL(this.#url).host} with a ${this.#o.assertion.description}`,
      principal: `${this.#o.clientId} in tenant ${this.#o.tenantId}`,
    };
  }

  async fetch(signal?: AbortSignal): Promise<AzureCredentials> {
    const ctx: EntraCallContext = {
      limits: {
        deadlineMs: this.#o.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs,
        maxBodyBytes: this.#o.maxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
      },
      now: this.#now,
      ...(signal ? { signal } : {}),
    };
    const retry = {
      maxAttempts: this.#o.maxAttempts ?? 3,
      baseMs: this.#o.retryBaseMs ?? 200,
      random: this.#o.random ?? Math.random,
      ...(signal ? { signal } : {}),
    };
    if (this.#o.federatedTokenFile) {
      // Written first: SDKs reading the file keep working while Entra is unreachable for us.
      const long = await this.#o.assertion.get(FILE_ASSERTION_SECONDS, signal);
      try {
        writeFederatedToken(this.#o.federatedTokenFile, long.token);
      } catch (err) {
        throw new ProviderError('FederatedTokenFile', (err as Error).message, true);
      }
    }
    const { token } = await this.#o.assertion.get(0, signal);
    const tokens: AzureAccessToken[] = [];
    for (const scope of this.#o.scopes) {
      const got = await withRetries(
        ENTRA_SERVICE,
        () => requestToken({ tokenUrl: this.#url, clientId: this.#o.clientId, scope, assertion: token }, ctx),
        retry,
      );
      tokens.push({ scope, resource: resourceOf(scope), accessToken: got.accessToken, expiration: got.expiration });
    }
    const expiration = new Date(Math.min(...tokens.map((t) => t.expiration.getTime())));
    return { expiration, tokens, clientId: this.#o.clientId };
  }

  destroy(): void {
    void this.#o.assertion.close();
  }
}
