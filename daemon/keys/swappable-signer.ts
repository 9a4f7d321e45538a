/**
 * The daemon's signer, replaceable while it runs: `credport key rotate` puts a new key file in
 * place and signals a reload, and from then on every JWT carries the new key's kid. Providers
 * hold this object, so none of them is rebuilt; a signature already under way finishes with the
 * key it started with.
 */
import type { EcPublicJwk, KeyDescription, KeySigner } from './signer.js';

export class SwappableSigner implements KeySigner {
  readonly algorithm = 'ES256' as const;
  #current: KeySigner;
  /** Present only when the first signer has it: its presence tells a PKCS#11 key from the others. */
  readonly readCertificates?: () => Promise<Uint8Array[]>;

  constructor(initial: KeySigner) {
    this.#current = initial;
    if (initial.readCertificates) this.readCertificates = () => this.#current.readCertificates?.() ?? Promise.resolve([]);
  }

  get thumbprint(): string {
    return this.#current.thumbprint;
  }

  publicJwk(): EcPublicJwk {
    return this.#current.publicJwk();
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    return this.#current.sign(data);
  }

  describe(): KeyDescription {
    return this.#current.describe();
  }

  /** Puts `next` in place and returns the signer it replaced (for the caller to close). */
  swap(next: KeySigner): KeySigner {
    const old = this.#current;
    this.#current = next;
    return old;
  }

  close(): Promise<void> {
    return this.#current.close();
  }
}
