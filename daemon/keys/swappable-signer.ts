/**
 * The daemon's signer, replaceable while it runs: `credport key rotate` puts a new key file in
 * place and signals a reload, and from then on every JWT carries the new key's kid. Providers
 * hold this object, so none of them is rebuilt; a signature already under way finishes with the
 * key it started with.
 */
import type { KeyAlgorithm, KeyDescription, KeySigner, PublicJwk } from './signer.js';

export class SwappableSigner implements KeySigner {
  #current: KeySigner;
  /** Present only when the first signer has it: its presence tells a PKCS#11 key from the others. */
  readonly readCertificates?: () => Promise<Uint8Array[]>;
  /** Likewise: a renewed certificate goes back to the token of the key in use. */
  readonly storeCertificate?: (der: Uint8Array) => Promise<void>;

  constructor(initial: KeySigner) {
    this.#current = initial;
    if (initial.readCertificates) this.readCertificates = () => this.#current.readCertificates?.() ?? Promise.resolve([]);
    if (initial.storeCertificate)
      this.storeCertificate = (der) =>
        this.#current.storeCertificate?.(der) ?? Promise.reject(new Error('the key in use cannot store certificates'));
  }

  get algorithm(): KeyAlgorithm {
    return this.#current.algorithm;
  }

  get thumbprint(): string {
    return this.#current.thumbprint;
  }

  publicJwk(): PublicJwk {
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
    // JWT headers and verifiers expect the algorithm they were built for: a rotation keeps it.
    if (next.algorithm !== this.#current.algorithm)
      throw new Error(`the new key signs ${next.algorithm}, the old one ${this.#current.algorithm}; a rotation keeps the algorithm`);
    const old = this.#current;
    this.#current = next;
    return old;
  }

  close(): Promise<void> {
    return this.#current.close();
  }
}
