/**
 * The client assertion credport signs itself: RS256 with the [rsa_key] (Entra refuses ES256), `iss`
 * and `sub` those of [oidc] (the device's one identity across clouds), `aud` the federated
 * credential's audience, a fresh `jti`. The RSA key is opened on first use, so a token that is not
 * plugged in yet fails a refresh (and /health says why) rather than the daemon's start.
 */
import { mintIdentityToken } from '../../../identity/jwt.js';
import type { KeySigner } from '../../../keys/signer.js';
import { ProviderError } from '../../../providers/types.js';
import type { AssertionSource, ClientAssertion } from './source.js';

export interface DeviceAssertionOptions {
  /** Opens the RS256 signer (the [rsa_key], or a [key] that is itself RSA). */
  openSigner: () => Promise<KeySigner>;
  /** Whether the caller owns the signer and must close it. */
  ownsSigner: boolean;
  issuer: string;
  subject: string;
  audience: string;
  /** [oidc] token_lifetime_seconds: what the daemon's own requests use. */
  lifetimeSeconds: number;
  now: () => number;
}

export class DeviceAssertionSource implements AssertionSource {
  readonly description = 'client assertion signed by the RSA key';
  readonly unattended = true;
  readonly #o: DeviceAssertionOptions;
  #signer: Promise<KeySigner> | undefined;

  constructor(o: DeviceAssertionOptions) {
    this.#o = o;
  }

  #open(): Promise<KeySigner> {
    if (!this.#signer) {
      this.#signer = this.#o.openSigner().catch((err: unknown) => {
        this.#signer = undefined; // tried again at the next refresh
        throw new ProviderError('KeyUnavailable', `the RSA key cannot be opened: ${(err as Error).message}`, true);
      });
    }
    return this.#signer;
  }

  async get(minSeconds: number, signal?: AbortSignal): Promise<ClientAssertion> {
    if (signal?.aborted) throw new ProviderError('Aborted', 'signing the client assertion was cancelled', true);
    const signer = await this.#open();
    if (signer.algorithm !== 'RS256')
      throw new ProviderError(
        'InvalidConfiguration',
        `the key signs ${signer.algorithm}; Entra ID accepts RS256 client assertions only`,
        false,
      );
    const lifetimeSeconds = Math.max(this.#o.lifetimeSeconds, minSeconds);
    const { token, claims } = await mintIdentityToken(signer, {
      issuer: this.#o.issuer,
      subject: this.#o.subject,
      audience: this.#o.audience,
      lifetimeSeconds,
      now: this.#o.now,
    });
    return { token, expiration: new Date(claims.exp * 1000) };
  }

  async close(): Promise<void> {
    const s = this.#signer;
    this.#signer = undefined;
    if (s && this.#o.ownsSigner) await (await s.catch(() => undefined))?.close();
  }
}
