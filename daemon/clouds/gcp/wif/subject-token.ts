/**
 * The device JWT Google STS exchanges (the "subject token"). Google rejects an `iat` in its future, so
 * `iat` is back-dated by the clock skew learnt from Google's Date headers plus a constant margin (the
 * skew is learnt to about a second, and below 30 s not at all); `exp` still lies `lifetime` ahead of the
 * later of both clocks, so the token is usable for its whole lifetime whichever clock is right.
 *
 * One token serves many exchanges: the daemon's own, and google-auth-library's through the URL-sourced
 * external_account endpoint at every one of its exchanges. It is reused while more than half its
 * lifetime is left (a hardware key is not asked to sign for every client), and minted once for any
 * number of concurrent callers.
 */
import { mintIdentityToken } from '../../../identity/jwt.js';
import { isKeyBackendError } from '../../../keys/errors.js';
import type { KeySigner } from '../../../keys/signer.js';
import type { ClockSkew } from '../../../providers/clock-skew.js';
import { ProviderError } from '../../../providers/types.js';

/** Below the 30 s ClockSkew ignores, so an unnoticed offset still leaves `iat` in Google's past. */
export const IAT_MARGIN_SECONDS = 30;

export interface SubjectTokenOptions {
  signer: KeySigner;
  issuer: string;
  subject: string;
  /** The workload identity provider's resource name. */
  audience: string;
  lifetimeSeconds: number;
  /** Google's clock relative to ours; shared with the calls that learn it. */
  skew: ClockSkew;
  now?: () => number;
}

export interface SubjectToken {
  /** The JWT. A credential: never logged. */
  token: string;
  /** Our clock: `lifetime` after minting (the conservative end; Google may accept it a little longer). */
  expiration: Date;
}

interface Minted extends SubjectToken {
  mintedAt: number;
  /** The skew the token was minted with: a very different one learnt since makes it wrong. */
  skewMs: number;
}

export class SubjectTokenSource {
  readonly #o: SubjectTokenOptions;
  readonly #now: () => number;
  #current: Minted | undefined;
  #minting: Promise<Minted> | undefined;

  constructor(opts: SubjectTokenOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** A token with more than half its lifetime left, minted now if the cached one is not. */
  async get(signal?: AbortSignal): Promise<SubjectToken> {
    if (signal?.aborted) throw new ProviderError('Aborted', 'minting the subject token was cancelled', true);
    const cached = this.#current;
    if (cached && this.#fresh(cached)) return { token: cached.token, expiration: cached.expiration };
    this.#minting ??= this.#mint().finally(() => {
      this.#minting = undefined;
    });
    const minted = await this.#minting;
    return { token: minted.token, expiration: minted.expiration };
  }

  /** Drops the cached token (Google refused it): the next get() mints. */
  invalidate(): void {
    this.#current = undefined;
  }

  /** Whether the cached token was minted with a skew far from the one known now. */
  get stale(): boolean {
    return this.#current !== undefined && !this.#skewStillRight(this.#current);
  }

  #skewStillRight(m: Minted): boolean {
    // Half the margin: what is left of it still keeps iat in Google's past.
    return Math.abs(this.#o.skew.ms - m.skewMs) <= (IAT_MARGIN_SECONDS * 1000) / 2;
  }

  #fresh(m: Minted): boolean {
    const now = this.#now();
    return now >= m.mintedAt && now < m.mintedAt + (this.#o.lifetimeSeconds * 1000) / 2 && this.#skewStillRight(m);
  }

  async #mint(): Promise<Minted> {
    const local = this.#now();
    const skewMs = this.#o.skew.ms;
    const google = local + skewMs;
    const iat = Math.floor(Math.min(local, google) / 1000) - IAT_MARGIN_SECONDS;
    const exp = Math.floor(Math.max(local, google) / 1000) + this.#o.lifetimeSeconds;
    let token: string;
    try {
      // mintIdentityToken stamps iat (and nbf) at its `now` and exp at now + lifetime: both set here.
      ({ token } = await mintIdentityToken(this.#o.signer, {
        issuer: this.#o.issuer,
        subject: this.#o.subject,
        audience: this.#o.audience,
        lifetimeSeconds: exp - iat,
        now: () => iat * 1000,
      }));
    } catch (err) {
      // A hardware key unplugged or locked keeps the backend's code (TOKEN_NOT_PRESENT...) for /health.
      if (isKeyBackendError(err))
        throw new ProviderError(err.code, `the device key could not sign the subject token: ${err.message}`, true);
      throw err;
    }
    const minted: Minted = { token, expiration: new Date(local + this.#o.lifetimeSeconds * 1000), mintedAt: local, skewMs };
    this.#current = minted;
    return minted;
  }
}
