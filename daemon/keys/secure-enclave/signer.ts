/**
 * The `secure-enclave` key backend (macOS): a P-256 key generated inside the
 * Secure Enclave, found by its keychain application tag. The private key never
 * leaves the enclave; with user presence every signature asks for Touch ID or
 * the login password, so such a key cannot refresh credentials unattended.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { KeyBackendError } from '../errors.js';
import { ecPublicJwk, jwkThumbprint } from '../jwk.js';
import { loadAddon, type NativeAddon, type NativeSecureEnclaveKey } from '../native/addon.js';
import type { EcPublicJwk, KeyDescription, KeySigner } from '../signer.js';

export interface SecureEnclaveKeyOptions {
  /** Keychain application tag, e.g. "dev.credport.device". */
  tag: string;
}

export interface SecureEnclaveCreateOptions extends SecureEnclaveKeyOptions {
  /** Require Touch ID or the password for every signature. */
  userPresence: boolean;
}

export type SecureEnclaveAvailability = { available: true } | { available: false; reason: string };

type Enclave = NativeAddon['secureEnclave'];

function probe(): { enclave: Enclave } | { reason: string } {
  if (process.platform !== 'darwin') {
    return { reason: `the Secure Enclave exists only on macOS (this is ${process.platform}); use the pkcs11 or file backend` };
  }
  const load = loadAddon();
  if (!load.available) return { reason: load.reason };
  if (!load.addon.secureEnclave.available) return { reason: load.addon.secureEnclave.reason };
  return { enclave: load.addon.secureEnclave };
}

/** Whether this machine and build can use the Secure Enclave, and if not why. */
export function secureEnclaveAvailability(): SecureEnclaveAvailability {
  const p = probe();
  return 'enclave' in p ? { available: true } : { available: false, reason: p.reason };
}

function requireEnclave(): Enclave {
  const p = probe();
  if ('reason' in p) throw new KeyBackendError('BACKEND_ERROR', `the secure-enclave key backend is unavailable: ${p.reason}`);
  return p.enclave;
}

function checkTag(tag: string): void {
  if (typeof tag !== 'string' || tag.length === 0 || Buffer.byteLength(tag) > 255) {
    throw new KeyBackendError('INVALID_ARGUMENT', 'the Secure Enclave key tag must be 1 to 255 bytes');
  }
}

async function native<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw KeyBackendError.from(err);
  }
}

export class SecureEnclaveSigner implements KeySigner {
  readonly algorithm = 'ES256' as const;
  readonly thumbprint: string;
  readonly #jwk: EcPublicJwk;
  readonly #tag: string;
  readonly #userPresence: boolean;
  #key: NativeSecureEnclaveKey | undefined;

  private constructor(key: NativeSecureEnclaveKey) {
    const info = key.info();
    const p = Buffer.from(info.publicKey);
    this.#jwk = ecPublicJwk(
      createPublicKey({
        key: { kty: 'EC', crv: 'P-256', x: p.subarray(1, 33).toString('base64url'), y: p.subarray(33).toString('base64url') },
        format: 'jwk',
      }),
    );
    this.thumbprint = jwkThumbprint(this.#jwk);
    this.#tag = info.tag;
    this.#userPresence = info.userPresence;
    this.#key = key;
  }

  /** Finds the key by tag (KEY_NOT_FOUND if there is none). */
  static async open(o: SecureEnclaveKeyOptions): Promise<SecureEnclaveSigner> {
    checkTag(o.tag);
    const enclave = requireEnclave();
    return new SecureEnclaveSigner(await native(() => enclave.open(o.tag)));
  }

  /** Generates a key in the Secure Enclave (KEY_EXISTS if the tag is taken). */
  static async create(o: SecureEnclaveCreateOptions): Promise<SecureEnclaveSigner> {
    checkTag(o.tag);
    const enclave = requireEnclave();
    return new SecureEnclaveSigner(await native(() => enclave.create(o.tag, o.userPresence)));
  }

  /** Deletes the key (KEY_NOT_FOUND if there is none). */
  static async remove(o: SecureEnclaveKeyOptions): Promise<void> {
    checkTag(o.tag);
    const enclave = requireEnclave();
    await native(() => enclave.remove(o.tag));
  }

  publicJwk(): EcPublicJwk {
    return { ...this.#jwk };
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const key = this.#key;
    if (key === undefined) throw new KeyBackendError('SESSION_INVALID', 'the secure-enclave signer was closed');
    const digest = createHash('sha256').update(data).digest();
    return new Uint8Array(await native(() => key.sign(digest)));
  }

  describe(): KeyDescription {
    return { backend: 'secure-enclave', location: `Secure Enclave key tagged "${this.#tag}"`, userPresence: this.#userPresence };
  }

  async close(): Promise<void> {
    // Dropping the reference lets the native side release its SecKeyRef.
    this.#key = undefined;
  }
}
