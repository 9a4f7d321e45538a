/**
 * The `secure-enclave` key backend (macOS): a P-256 key generated inside the Secure Enclave and kept
 * outside the keychain, so that a stock, unsigned `node` can use it. Its handle is a key file (see
 * key-file.ts). The private key never leaves the enclave; with user presence every signature asks for
 * Touch ID or the login password, so such a key cannot refresh credentials unattended, and a prompt
 * that cannot be shown or is cancelled closes the gate for a while (prompt-gate.ts).
 */
import { createHash, createPublicKey } from 'node:crypto';
import { rmSync } from 'node:fs';
import { KeyBackendError } from '../errors.js';
import { ecPublicJwk, jwkThumbprint } from '../jwk.js';
import { loadAddon, type NativeAddon, type NativeSecureEnclaveKey } from '../native/addon.js';
import type { EcPublicJwk, KeyDescription, KeySigner } from '../signer.js';
import { createEnclaveKeyFile, readEnclaveKeyFile } from './key-file.js';
import { PromptGate } from './prompt-gate.js';

export interface SecureEnclaveKeyOptions {
  /** The key file (token object id and public point). */
  path: string;
  /** Whether the config asks for Touch ID or the password for every signature. */
  userPresence: boolean;
}

export type SecureEnclaveAvailability = { available: true } | { available: false; reason: string };

type Enclave = NativeAddon['secureEnclave'];

function compiledIn(): { enclave: Enclave } | { reason: string } {
  if (process.platform !== 'darwin') {
    return { reason: `the Secure Enclave exists only on macOS (this is ${process.platform}); use the pkcs11 or file backend` };
  }
  const load = loadAddon();
  if (!load.available) return { reason: load.reason };
  if (!load.addon.secureEnclave.available) return { reason: load.addon.secureEnclave.reason };
  return { enclave: load.addon.secureEnclave };
}

/**
 * Whether this machine can use the Secure Enclave, and if not why: off macOS or without the addon at
 * once; on a Mac by making a throwaway key, since virtual machines and Intel Macs without a T2 have none.
 */
export async function secureEnclaveAvailability(): Promise<SecureEnclaveAvailability> {
  const p = compiledIn();
  if ('reason' in p) return { available: false, reason: p.reason };
  const probe = await p.enclave.probe().catch((err: unknown) => ({ available: false, reason: (err as Error).message }));
  return probe.available ? { available: true } : { available: false, reason: probe.reason };
}

function requireEnclave(): Enclave {
  const p = compiledIn();
  if ('reason' in p) throw new KeyBackendError('BACKEND_ERROR', `the secure-enclave key backend is unavailable: ${p.reason}`);
  return p.enclave;
}

async function native<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw KeyBackendError.from(err);
  }
}

function jwkOf(point: Buffer): EcPublicJwk {
  return ecPublicJwk(
    createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
      format: 'jwk',
    }),
  );
}

export class SecureEnclaveSigner implements KeySigner {
  readonly algorithm = 'ES256' as const;
  readonly thumbprint: string;
  readonly #jwk: EcPublicJwk;
  readonly #path: string;
  readonly #userPresence: boolean;
  readonly #gate: PromptGate | undefined;
  #key: NativeSecureEnclaveKey | undefined;

  private constructor(key: NativeSecureEnclaveKey, path: string, expectedPoint: Buffer) {
    const info = key.info();
    // The native side compared the points already; a second look costs nothing and guards the file.
    if (!Buffer.from(info.publicKey).equals(expectedPoint)) {
      throw new KeyBackendError('KEY_NOT_FOUND', `the Secure Enclave key does not match the public key in ${path}`);
    }
    this.#jwk = jwkOf(expectedPoint);
    this.thumbprint = jwkThumbprint(this.#jwk);
    this.#path = path;
    this.#userPresence = info.userPresence;
    this.#gate = info.userPresence ? new PromptGate() : undefined;
    this.#key = key;
  }

  /** Opens the key its file names (KEY_NOT_FOUND if the file is missing or the Secure Enclave refuses it). */
  static async open(o: SecureEnclaveKeyOptions): Promise<SecureEnclaveSigner> {
    const enclave = requireEnclave();
    const file = readEnclaveKeyFile(o.path);
    if (file.userPresence !== o.userPresence) {
      throw new KeyBackendError(
        'INVALID_ARGUMENT',
        `the Secure Enclave key in ${o.path} was created ${file.userPresence ? 'with' : 'without'} user presence, which cannot change; set user_presence = ${file.userPresence} or create a new key`,
      );
    }
    const key = await native(() => enclave.open(file.tokenObject, file.publicKey, file.userPresence));
    return new SecureEnclaveSigner(key, o.path, file.publicKey);
  }

  /** Generates a key in the Secure Enclave and writes its file (KEY_EXISTS if the file exists). */
  static async create(o: SecureEnclaveKeyOptions): Promise<SecureEnclaveSigner> {
    const enclave = requireEnclave();
    const probe = await native(() => enclave.probe());
    if (!probe.available) throw new KeyBackendError('BACKEND_ERROR', probe.reason);
    const key = await native(() => enclave.create(o.userPresence));
    const info = key.info();
    createEnclaveKeyFile(o.path, { publicKey: info.publicKey, tokenObject: info.tokenObject, userPresence: o.userPresence });
    return new SecureEnclaveSigner(key, o.path, info.publicKey);
  }

  /**
   * Destroys the key: the Secure Enclave keeps nothing of a key outside the keychain, so once its file
   * (the only copy of its token object id) is gone, nothing can use it again.
   */
  static async remove(o: Pick<SecureEnclaveKeyOptions, 'path'>): Promise<void> {
    requireEnclave();
    readEnclaveKeyFile(o.path); // KEY_NOT_FOUND when there is none; refuses to delete what is not a key file
    rmSync(o.path);
  }

  publicJwk(): EcPublicJwk {
    return { ...this.#jwk };
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const key = this.#key;
    if (key === undefined) throw new KeyBackendError('SESSION_INVALID', 'the secure-enclave signer was closed');
    const digest = createHash('sha256').update(data).digest();
    const ask = async () => new Uint8Array(await native(() => key.sign(digest)));
    return this.#gate ? this.#gate.run(ask) : ask();
  }

  describe(): KeyDescription {
    return { backend: 'secure-enclave', location: `Secure Enclave key file ${this.#path}`, userPresence: this.#userPresence };
  }

  async close(): Promise<void> {
    // Dropping the reference lets the native side release its SecKeyRef.
    this.#key = undefined;
  }
}
