/**
 * The `pkcs11` key backend: a P-256 or RSA key on a PKCS#11 token (YubiKey
 * through ykcs11 or opensc-pkcs11, a TPM through tpm2-pkcs11, an HSM, SoftHSM2).
 *
 * The signer holds one module, one logged-in session and the key's handle for
 * its whole life, so a signature is one hardware operation. When a signature
 * fails for any reason that is not about the PIN or the request (the token
 * pulled out and plugged back, reset, a daemon behind the module restarted,
 * which tpm2-pkcs11 reports as CKR_GENERAL_ERROR), the signer re-opens the
 * session, logs in again, finds the key again, checks it is the same key, and
 * retries that signature once. Concurrent signatures that fail together share
 * one re-open, and re-opens are spaced out (an exponential back-off while they
 * keep failing) so that a broken token is not hammered.
 *
 * At open and after every re-open the key pair is proven: one signature by the
 * private key must verify with the public key the token gave, because the
 * public object is only found by sharing the private key's CKA_ID.
 *
 * The same session also reads the X.509 certificates stored on the token next
 * to the key (readCertificates), with the same re-open handling.
 */
import {
  X509Certificate,
  createHash,
  createHmac,
  createPublicKey,
  randomBytes,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { xdgStateHome } from '../../config/paths.js';
import { readSecretFile } from '../../util/secure-file.js';
import { KeyBackendError, isKeyBackendError, type KeyBackendErrorCode } from '../errors.js';
import { ecPublicJwk, jwkThumbprint } from '../jwk.js';
import {
  loadAddon,
  type NativeAddon,
  type NativeKeyInfo,
  type NativeKeySelector,
  type NativePkcs11Session,
  type NativeSlotInfo,
  type NativeTokenInfo,
  type NativeTokenSelector,
} from '../native/addon.js';
import type { KeyAlgorithm, KeyDescription, KeySigner, PublicJwk, RsaPublicJwk } from '../signer.js';
import { assertPinNotRefused, clearPinRefusal, recordPinRefusal } from './pin-refusal.js';
import { parsePkcs11Uri, type Pkcs11Uri } from './uri.js';

export interface Pkcs11KeyOptions {
  /** Path of the PKCS#11 module (shared library). May be omitted when the URI has module-path. */
  module: string;
  /** CK_TOKEN_INFO label of the token. */
  tokenLabel?: string;
  /** RFC 7512 URI naming the token and/or key; must not carry a PIN. */
  uri?: string;
  /** CKA_LABEL of the key. */
  keyLabel?: string;
  /** CKA_ID of the key, hex. */
  keyId?: string;
  /** Where the user PIN comes from: a 0600 file, or an environment variable (never argv). */
  pin: { file: string } | { env: string; value?: string };
  /**
   * Where a PIN file's refusal is remembered across processes (pin-refusal.ts); default
   * $XDG_STATE_HOME/credport.
   */
  stateDir?: string;
  /** For create(): the kind of key to generate (default "ec", P-256). */
  keyType?: 'ec' | 'rsa';
  /** For create() with keyType "rsa": 2048 (default), 3072 or 4096. */
  rsaBits?: number;
  /** The daemon's clock: re-opens are spaced by it, so that a test driving the daemon's time drives them too. */
  now?: () => number;
}

type Env = Record<string, string | undefined>;

/** CKA_LABEL used when neither key_label, key_id nor the URI's object/id names the key. */
export const DEFAULT_KEY_LABEL = 'device';

/** What the options resolve to, checked once. */
interface Target {
  module: string;
  token: NativeTokenSelector;
  key: NativeKeySelector;
  pin: Pkcs11KeyOptions['pin'];
  stateDir: string;
  env: Env;
  warnings: string[];
}

/**
 * Errors a re-open cannot cure: about the PIN (re-trying could lock the token), the user, or the
 * request. Every other failure (CKR_GENERAL_ERROR after tpm2-abrmd restarted, a device error, a
 * module finalised by someone else) gets a re-open.
 */
const NOT_RECOVERABLE = new Set<KeyBackendErrorCode>([
  'PIN_INCORRECT',
  'PIN_LOCKED',
  'USER_CANCELLED',
  'INVALID_ARGUMENT',
  'KEY_EXISTS',
  'CERTIFICATE_NOT_FOUND',
  'UNSUPPORTED_CURVE',
]);

/** Spacing of re-opens: the first at once, then doubling while they fail, at most REOPEN_MAX_MS apart. */
const REOPEN_BASE_MS = 250;
const REOPEN_MAX_MS = 5_000;
/** Least time between two re-opens that succeeded, so a token that fails every call is not re-opened per call. */
const REOPEN_MIN_INTERVAL_MS = 1_000;

function invalid(message: string): KeyBackendError {
  return new KeyBackendError('INVALID_ARGUMENT', message);
}

function requireAddon(): NativeAddon {
  const load = loadAddon();
  if (!load.available) throw new KeyBackendError('BACKEND_ERROR', `the pkcs11 key backend is unavailable: ${load.reason}`);
  return load.addon;
}

/** Runs a native call, turning whatever it rejects with into a KeyBackendError. */
async function native<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw KeyBackendError.from(err);
  }
}

function hexToBytes(hex: string, what: string): Uint8Array {
  const clean = hex.replace(/^0x/i, '').replace(/[:\s]/g, '');
  if (clean.length === 0 || clean.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(clean)) {
    throw invalid(`${what} must be hex bytes (for example "01" or "0a1b"), got "${hex}"`);
  }
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

function pick<T>(a: T | undefined, b: T | undefined, what: string, same: (x: T, y: T) => boolean): T | undefined {
  if (a !== undefined && b !== undefined && !same(a, b)) {
    throw invalid(`${what} is given twice with different values (in the options and in the pkcs11: URI)`);
  }
  return a ?? b;
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);

/** Which token and key the options select, checked as opening would check them, without loading the module. */
export function describePkcs11Target(o: Pkcs11KeyOptions, env: Env): { tokenLabel?: string; keyLabel?: string; keyId?: string } {
  const t = resolveTarget(o, env);
  return {
    ...(t.token.label !== undefined ? { tokenLabel: t.token.label } : {}),
    ...(t.key.label !== undefined ? { keyLabel: t.key.label } : {}),
    ...(t.key.id !== undefined ? { keyId: Buffer.from(t.key.id).toString('hex') } : {}),
  };
}

function resolveTarget(o: Pkcs11KeyOptions, env: Env): Target {
  const uri: Pkcs11Uri = o.uri !== undefined ? parsePkcs11Uri(o.uri) : { warnings: [] };
  if (uri.type !== undefined && uri.type !== 'private' && uri.type !== 'public') {
    throw invalid(`the pkcs11: URI names a ${uri.type} object; credport needs a key pair (type=private)`);
  }
  const module = pick(nonEmpty(o.module), nonEmpty(uri.modulePath), 'the module path', (x, y) => x === y);
  if (module === undefined) throw invalid('the PKCS#11 module path is required (module, or module-path in the URI)');
  const token: NativeTokenSelector = {};
  const label = pick(nonEmpty(o.tokenLabel), nonEmpty(uri.token), 'the token label', (x, y) => x === y);
  if (label !== undefined) token.label = label;
  if (nonEmpty(uri.serial) !== undefined) token.serial = uri.serial;
  if (nonEmpty(uri.manufacturer) !== undefined) token.manufacturer = uri.manufacturer;
  if (nonEmpty(uri.model) !== undefined) token.model = uri.model;
  if (uri.slotId !== undefined) token.slotId = uri.slotId;
  const warnings = [...uri.warnings];
  for (const [attr, value] of [
    ['slot-description', uri.slotDescription],
    ['slot-manufacturer', uri.slotManufacturer],
    ['library-manufacturer', uri.libraryManufacturer],
    ['library-description', uri.libraryDescription],
    ['library-version', uri.libraryVersion],
  ] as const) {
    if (value !== undefined) warnings.push(`pkcs11: URI attribute "${attr}" does not select a token in credport and was ignored`);
  }

  const key: NativeKeySelector = {};
  const keyLabel = pick(nonEmpty(o.keyLabel), nonEmpty(uri.object), 'the key label', (x, y) => x === y);
  if (keyLabel !== undefined) key.label = keyLabel;
  const keyId = pick(
    o.keyId !== undefined ? hexToBytes(o.keyId, 'key_id') : undefined,
    uri.id !== undefined && uri.id.length > 0 ? uri.id : undefined,
    'the key id',
    (x, y) => Buffer.from(x).equals(Buffer.from(y)),
  );
  if (keyId !== undefined) key.id = keyId;
  // Unnamed, the key is the one `credport init` creates: docs and schema promise this default.
  if (key.label === undefined && key.id === undefined) key.label = DEFAULT_KEY_LABEL;
  if ('file' in o.pin) {
    if (!o.pin.file) throw invalid('pin_file is empty');
  } else if (!o.pin.env) {
    throw invalid('pin_env is empty');
  }
  const stateDir = o.stateDir ?? join(xdgStateHome(env), 'credport');
  return { module, token, key, pin: o.pin, stateDir, env, warnings };
}

/**
 * Reads the PIN afresh (so a rotated PIN file is picked up on re-open). The
 * caller zeroes the returned buffer after use. Never logged, never in a message.
 */
function readPin(target: Target, token: NativeTokenInfo): Buffer {
  let pin: Buffer;
  if ('file' in target.pin) {
    const raw = readSecretFile(target.pin.file, 'PIN file', 'create it (mode 0600) holding the token PIN');
    // Editors end files with a newline; exactly one is not part of the PIN.
    let end = raw.length;
    if (raw[end - 1] === 0x0a) end -= raw[end - 2] === 0x0d ? 2 : 1;
    pin = Buffer.from(raw.subarray(0, end));
    raw.fill(0);
  } else {
    const value = target.pin.value ?? target.env[target.pin.env];
    if (value === undefined) {
      throw invalid(`environment variable ${target.pin.env} is not set; it should hold the token PIN`);
    }
    pin = Buffer.from(value, 'utf8');
  }
  if (pin.length === 0 && !token.protectedAuthenticationPath) {
    throw invalid(`the PIN from ${'file' in target.pin ? `file ${target.pin.file}` : `$${target.pin.env}`} is empty`);
  }
  return pin;
}

interface Connection {
  session: NativePkcs11Session;
  token: NativeTokenInfo;
}

/**
 * Remembers a PIN the token refused (as an HMAC under a per-signer random key,
 * never the PIN), so that automatic re-opens do not offer it again: tokens
 * lock after a few wrong PINs (a YubiKey after three), and a re-open is tried
 * on every signature while it fails. A changed PIN file or variable is tried.
 */
interface PinGuard {
  readonly key: Buffer;
  refused: Buffer | undefined;
}

/**
 * Which PIN logged in to which token through which module, in this process, as an HMAC under a
 * per-process random key. Login state is the token's, shared by every session of the process: a
 * second login gets CKR_USER_ALREADY_LOGGED_IN without the token looking at its PIN, and this is
 * what that PIN is compared with instead.
 */
const LOGIN_MARK_KEY = randomBytes(32);
const loggedInWith = new Map<string, Buffer>();

function tokenKey(target: Target, token: NativeTokenInfo): string {
  return [target.module, token.manufacturer, token.model, token.serial, token.label].join('\0');
}

/** C_Login, with the PIN verified even when the token says another session is logged in already. */
async function login(session: NativePkcs11Session, target: Target, token: NativeTokenInfo, pin: Buffer): Promise<void> {
  const mark = createHmac('sha256', LOGIN_MARK_KEY).update(pin).digest();
  const who = tokenKey(target, token);
  // Older addons resolve undefined: they never report "already logged in".
  if ((await native(() => session.login(pin))) !== true) {
    loggedInWith.set(who, mark);
    return;
  }
  const known = loggedInWith.get(who);
  if (known !== undefined) {
    if (timingSafeEqual(known, mark)) return;
    throw new KeyBackendError(
      'PIN_INCORRECT',
      `the PIN differs from the one this process logged in to token "${token.label}" with; the token was not asked ` +
        '(it is logged in already), so no try was spent; correct the PIN file or variable',
    );
  }
  // Logged in by something else in this process (another library using the module): the only
  // proof is a real login, so log out and in again.
  await native(() => session.logout());
  if ((await native(() => session.login(pin))) === true) {
    throw new KeyBackendError('BACKEND_ERROR', 'the token stays logged in after C_Logout; cannot verify the PIN');
  }
  loggedInWith.set(who, mark);
}

/** Opens a session on the token and logs in; closes the session if login fails. */
async function connect(addon: NativeAddon, target: Target, guard?: PinGuard, rescan = false): Promise<Connection> {
  const session = await native(() => addon.pkcs11.openSession(target.module, target.token, rescan ? { rescan } : undefined));
  try {
    const token = await native(() => session.token());
    if (token.loginRequired) {
      const pinFile = 'file' in target.pin ? target.pin.file : undefined;
      if (pinFile !== undefined) assertPinNotRefused(target.stateDir, pinFile);
      const pin = readPin(target, token);
      try {
        const mark = guard && createHmac('sha256', guard.key).update(pin).digest();
        if (guard?.refused && mark && timingSafeEqual(mark, guard.refused)) {
          throw new KeyBackendError(
            'PIN_INCORRECT',
            'the token refused this PIN before; credport does not offer it again (that could lock the token); ' +
              'correct the PIN file or variable',
          );
        }
        try {
          await login(session, target, token, pin);
          if (guard) guard.refused = undefined;
          if (pinFile !== undefined) clearPinRefusal(target.stateDir, pinFile);
        } catch (err) {
          // Only a PIN the token called wrong is held back; offering one to a locked token costs nothing,
          // and after an unblock the same PIN must work again without a restart.
          if (guard && isKeyBackendError(err, 'PIN_INCORRECT')) guard.refused = mark;
          if (pinFile !== undefined && (isKeyBackendError(err, 'PIN_INCORRECT') || isKeyBackendError(err, 'PIN_LOCKED'))) {
            try {
              recordPinRefusal(target.stateDir, pinFile, (err as KeyBackendError).code);
            } catch {
              // The refusal itself is what the caller must hear; a state directory that cannot be
              // written only loses the memory of it.
            }
          }
          throw err;
        }
      } finally {
        pin.fill(0);
      }
    }
    return { session, token };
  } catch (err) {
    await session.close().catch(() => undefined);
    throw err;
  }
}

function checkUsable(key: NativeKeyInfo): void {
  if (key.alwaysAuthenticate) {
    throw new KeyBackendError(
      'INVALID_ARGUMENT',
      `key "${key.label}" wants the PIN for every signature (CKA_ALWAYS_AUTHENTICATE), which an unattended daemon ` +
        'cannot give; use a key whose PIN policy is "once" (on a YubiKey: PIV slot 9a, key_id "01")',
    );
  }
}

function publicJwkOf(key: NativeKeyInfo): PublicJwk {
  if (key.keyType === 'rsa') return rsaJwkOf(key.modulus, key.publicExponent);
  const p = Buffer.from(key.publicKey);
  if (p.length !== 65 || p[0] !== 0x04) throw new KeyBackendError('BACKEND_ERROR', 'the token returned a malformed public key');
  try {
    // Importing checks that the point is on P-256.
    const key = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: p.subarray(1, 33).toString('base64url'), y: p.subarray(33).toString('base64url') },
      format: 'jwk',
    });
    return ecPublicJwk(key);
  } catch (err) {
    throw new KeyBackendError('BACKEND_ERROR', 'the token returned a public key that is not a valid P-256 point', { cause: err });
  }
}

/** Big-endian unsigned integers go into a JWK without leading zero bytes (RFC 7518 section 6.3.1). */
const unsignedBase64url = (bytes: Uint8Array): string => {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.subarray(i)).toString('base64url');
};

function rsaJwkOf(modulus: Uint8Array, exponent: Uint8Array): RsaPublicJwk {
  const jwk: RsaPublicJwk = { kty: 'RSA', n: unsignedBase64url(modulus), e: unsignedBase64url(exponent) };
  try {
    createPublicKey({ key: { ...jwk }, format: 'jwk' });
  } catch (err) {
    throw new KeyBackendError('BACKEND_ERROR', 'the token returned an RSA public key node:crypto cannot read', { cause: err });
  }
  return jwk;
}

const keyObjectOf = (jwk: PublicJwk): KeyObject => createPublicKey({ key: { ...jwk }, format: 'jwk' });

/** Signs `data` with the key on the session: ECDSA over its digest, or RSA PKCS#1 v1.5 with SHA-256. */
async function signWith(session: NativePkcs11Session, key: NativeKeyInfo, data: Uint8Array): Promise<Uint8Array> {
  // Hashing here keeps an EC token's work to one operation on 32 bytes; an RSA token that can hash
  // gets the data too (CKM_SHA256_RSA_PKCS), the digest being its fallback.
  const digest = createHash('sha256').update(data).digest();
  const sig = await native(() => (key.keyType === 'rsa' ? session.sign(key.handle, digest, data) : session.sign(key.handle, digest)));
  return new Uint8Array(sig);
}

/**
 * Proves that the public key the token gave belongs to the private key: one signature over fresh
 * random data must verify. The public object is found only by sharing the private key's CKA_ID,
 * which nothing on a token enforces; a stale or foreign public object would otherwise make every
 * credential fail at the cloud, far from the cause.
 */
async function proveKeyPair(session: NativePkcs11Session, key: NativeKeyInfo, jwk: PublicJwk): Promise<void> {
  const probe = Buffer.concat([Buffer.from('credport key pair check\0'), randomBytes(32)]);
  const sig = await signWith(session, key, probe);
  const ok =
    jwk.kty === 'RSA'
      ? verify('sha256', probe, keyObjectOf(jwk), sig)
      : verify('sha256', probe, { key: keyObjectOf(jwk), dsaEncoding: 'ieee-p1363' }, sig);
  if (!ok) {
    const name = key.label !== '' ? `"${key.label}"` : `id ${Buffer.from(key.id).toString('hex')}`;
    throw new KeyBackendError(
      'KEY_NOT_FOUND',
      `the public key stored with key ${name} does not belong to its private key (a signature by the private key ` +
        'does not verify with it): the token holds a mismatched public key object under the same CKA_ID; delete it ' +
        'and store the right one, or create the key again',
    );
  }
}

interface Candidate {
  der: Uint8Array;
  matches: boolean;
  valid: boolean;
  notBefore: number;
}

/**
 * Certificates whose public key is the key's first (newest valid one first, so a renewal written next to
 * the old certificate wins), then the rest in the token's order, as chain candidates.
 */
function leafFirst(ders: Uint8Array[], spki: Buffer, now: number): Uint8Array[] {
  const candidates: Candidate[] = ders.map((der) => {
    try {
      const cert = new X509Certificate(der);
      const notBefore = Date.parse(cert.validFrom);
      const notAfter = Date.parse(cert.validTo);
      const matches = Buffer.from(cert.publicKey.export({ type: 'spki', format: 'der' })).equals(spki);
      return { der, matches, valid: notBefore <= now && now < notAfter, notBefore: Number.isNaN(notBefore) ? 0 : notBefore };
    } catch {
      // Not a certificate node:crypto can read: left for the caller to report, after the usable ones.
      return { der, matches: false, valid: false, notBefore: 0 };
    }
  });
  const leaves = candidates.filter((c) => c.matches).sort((a, b) => Number(b.valid) - Number(a.valid) || b.notBefore - a.notBefore);
  return [...leaves, ...candidates.filter((c) => !c.matches)].map((c) => c.der);
}

export class Pkcs11Signer implements KeySigner {
  readonly algorithm: KeyAlgorithm;
  readonly thumbprint: string;
  /** Notes about ignored URI attributes, for the daemon to log once. */
  readonly warnings: readonly string[];
  readonly #jwk: PublicJwk;
  /** DER SubjectPublicKeyInfo of the key, to tell its certificate from others on the token. */
  readonly #spki: Buffer;
  readonly #addon: NativeAddon;
  readonly #target: Target;
  #session: NativePkcs11Session | undefined;
  #token: NativeTokenInfo;
  #key: NativeKeyInfo;
  /** Bumped by every successful re-open; tells a failed signature whether its session is already replaced. */
  #generation = 0;
  #reopening: Promise<void> | undefined;
  #reopens = 0;
  /** Re-opens that failed in a row, and when the last re-open was tried: the back-off's state. */
  #failedReopens = 0;
  #lastReopenAt = 0;
  #now: () => number = Date.now;
  /** Cuts a re-open's wait short when the signer is closed, so that close() never waits out a back-off. */
  readonly #closer = new AbortController();
  #closed = false;
  readonly #pinGuard: PinGuard = { key: randomBytes(32), refused: undefined };

  private constructor(addon: NativeAddon, target: Target, c: Connection, key: NativeKeyInfo, jwk: PublicJwk) {
    this.#addon = addon;
    this.#target = target;
    this.#session = c.session;
    this.#token = c.token;
    this.#key = key;
    this.#jwk = jwk;
    this.algorithm = jwk.kty === 'RSA' ? 'RS256' : 'ES256';
    this.thumbprint = jwkThumbprint(this.#jwk);
    this.#spki = Buffer.from(keyObjectOf(jwk).export({ type: 'spki', format: 'der' }));
    this.warnings = target.warnings;
  }

  /** The key's public JWK, once its pair is proven (see proveKeyPair). */
  static async #proven(session: NativePkcs11Session, key: NativeKeyInfo): Promise<PublicJwk> {
    checkUsable(key);
    const jwk = publicJwkOf(key);
    await proveKeyPair(session, key, jwk);
    return jwk;
  }

  /** Opens the token, logs in and finds the key (KEY_NOT_FOUND if it is absent). */
  static async open(o: Pkcs11KeyOptions, env: Env = process.env): Promise<Pkcs11Signer> {
    const target = resolveTarget(o, env);
    const addon = requireAddon();
    const c = await connect(addon, target);
    try {
      const key = await native(() => c.session.findKey(target.key));
      const jwk = await Pkcs11Signer.#proven(c.session, key);
      const signer = new Pkcs11Signer(addon, target, c, key, jwk);
      if (o.now) signer.#now = o.now;
      return signer;
    } catch (err) {
      await c.session.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Generates a new key pair on the token (P-256, or RSA with keyType "rsa"; private half sensitive
   * and not extractable) and returns its signer. KEY_EXISTS if the label or id is taken. Without
   * key_id a random 16-byte CKA_ID pairs the two halves.
   */
  static async create(o: Pkcs11KeyOptions, env: Env = process.env): Promise<Pkcs11Signer> {
    const target = resolveTarget(o, env);
    if (target.key.label === undefined) throw invalid('creating a key needs a key label (key_label, or object= in the URI)');
    const addon = requireAddon();
    const c = await connect(addon, target);
    try {
      const label = target.key.label;
      const id = target.key.id ?? Uint8Array.from(randomBytes(16));
      const spec = o.keyType === 'rsa' ? { label, id, type: 'rsa' as const, bits: o.rsaBits ?? 2048 } : { label, id, type: 'ec' as const };
      const key = await native(() => c.session.generateKey(spec));
      // Later re-opens find it by both, which is unambiguous.
      const created: Target = { ...target, key: { label, id } };
      const jwk = await Pkcs11Signer.#proven(c.session, key);
      return new Pkcs11Signer(addon, created, c, key, jwk);
    } catch (err) {
      await c.session.close().catch(() => undefined);
      throw err;
    }
  }

  /** Deletes the key pair from the token (KEY_NOT_FOUND if absent). */
  static async remove(o: Pkcs11KeyOptions, env: Env = process.env): Promise<void> {
    const target = resolveTarget(o, env);
    const addon = requireAddon();
    const c = await connect(addon, target);
    try {
      await native(() => c.session.deleteKey(target.key));
    } finally {
      await c.session.close().catch(() => undefined);
    }
  }

  /** The module's slots and tokens, for `credport init` and diagnostics. */
  static async listTokens(module: string): Promise<NativeSlotInfo[]> {
    const addon = requireAddon();
    return native(() => addon.pkcs11.listSlots(module));
  }

  publicJwk(): PublicJwk {
    return { ...this.#jwk };
  }

  /** How many times the session was re-opened after the token went away. */
  get reopens(): number {
    return this.#reopens;
  }

  /** ES256: the raw r||s; RS256: the PKCS#1 v1.5 signature. Both over SHA-256(data). */
  async sign(data: Uint8Array): Promise<Uint8Array> {
    return this.#withSession((session, key) => signWith(session, key, data));
  }

  /**
   * Writes a renewed certificate next to the key (its CKA_ID and CKA_LABEL), then removes the
   * certificates it replaces (same CKA_ID), so that readCertificates() finds the new one. The subject
   * name goes along because PKCS#11 requires it on an X.509 certificate object.
   */
  async storeCertificate(der: Uint8Array): Promise<void> {
    const { X509Certificate } = await import('../../x509/x509-lib.js');
    let subject: Buffer;
    try {
      subject = Buffer.from(new X509Certificate(der).subjectName.toArrayBuffer());
    } catch {
      throw new KeyBackendError('INVALID_ARGUMENT', 'the certificate to store is not a DER X.509 certificate');
    }
    await this.#withSession(async (session, key) => {
      if (typeof session.storeCertificate !== 'function') {
        throw new KeyBackendError(
          'BACKEND_ERROR',
          'the hardware key addon predates storing certificates; rebuild it with: node scripts/build-addon.mjs',
        );
      }
      if (key.id.length === 0) {
        throw new KeyBackendError('INVALID_ARGUMENT', 'the key has no CKA_ID to store its certificate under; give the key an id');
      }
      const store = session.storeCertificate.bind(session);
      await native(() => store({ id: Buffer.from(key.id), label: key.label }, Buffer.from(der), subject));
    });
  }

  /**
   * The X.509 certificates stored on the token for this key, DER, leaf first. By default those with the
   * key's CKA_ID (how pkcs11-tool, ykman and PIV tokens pair a certificate with its key), or with its
   * CKA_LABEL when the key has no id or no certificate has that id. The leaf is the one whose public
   * key is this key (the newest valid one if several are); any others follow as chain candidates. One
   * token call when the certificate is there; re-opens the session like sign() when the token went away.
   * CERTIFICATE_NOT_FOUND when there is none. `selector` overrides the default (label and/or id).
   */
  async readCertificates(selector?: NativeKeySelector): Promise<Uint8Array[]> {
    const found = await this.#withSession(async (session, key) => {
      // An addon built before this method existed: say what to do rather than "not a function".
      if (typeof session.readCertificates !== 'function') {
        throw new KeyBackendError(
          'BACKEND_ERROR',
          'the hardware key addon predates reading certificates; rebuild it with: node scripts/build-addon.mjs',
        );
      }
      const id = key.id.length > 0 ? Buffer.from(key.id).toString('hex') : undefined;
      const tries: NativeKeySelector[] =
        selector !== undefined
          ? [selector]
          : [...(id !== undefined ? [{ id: key.id }] : []), ...(key.label !== '' ? [{ label: key.label }] : [])];
      for (const sel of tries) {
        try {
          return await native(() => session.readCertificates(sel));
        } catch (err) {
          if (!isKeyBackendError(err, 'CERTIFICATE_NOT_FOUND')) throw err;
        }
      }
      // Some modules answer a search in a session whose token went away and came back (or was reset)
      // with nothing rather than an error. Signing notices through the stale key handle; here the key
      // itself is looked for: gone too means the session's view is stale, and a re-open is the cure.
      await this.#assertKeyVisible(session);
      const describe = (sel: NativeKeySelector): string =>
        [sel.id && `id ${Buffer.from(sel.id).toString('hex')}`, sel.label !== undefined && `label "${sel.label}"`]
          .filter(Boolean)
          .join(' and ');
      const what = tries.length > 0 ? tries.map(describe).join(' or ') : "the key's id or label (the key has neither)";
      const hint =
        selector === undefined
          ? `--type cert${id !== undefined ? ` --id ${id}` : ''}${key.label !== '' ? ` --label "${key.label}"` : ''}`
          : '--type cert';
      throw new KeyBackendError(
        'CERTIFICATE_NOT_FOUND',
        `no X.509 certificate with ${what} on token "${this.#token.label}"; store the key's certificate there with ` +
          `pkcs11-tool --write-object cert.der ${hint}`,
      );
    });
    return leafFirst(
      found.map((c) => new Uint8Array(c.value)),
      this.#spki,
      Date.now(),
    );
  }

  describe(): KeyDescription {
    const t = this.#token;
    const key = this.#key.label ? `key "${this.#key.label}"` : `key id ${Buffer.from(this.#key.id).toString('hex')}`;
    return {
      backend: 'pkcs11',
      location: `token "${t.label}" (${t.manufacturer} ${t.model}, serial ${t.serial}), ${key}`,
      // Signing needs the PIN once per session, never a person per signature
      // (keys that would are refused when opened).
      userPresence: false,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closer.abort();
    await this.#reopening?.catch(() => undefined);
    const session = this.#session;
    this.#session = undefined;
    await session?.close().catch(() => undefined);
  }

  #assertOpen(): void {
    if (this.#closed) throw new KeyBackendError('SESSION_INVALID', 'the pkcs11 signer was closed');
  }

  /**
   * Runs `op` on the current session; when it fails because the token went away, re-opens the session
   * (shared with concurrent callers) and runs it once more.
   */
  async #withSession<T>(op: (session: NativePkcs11Session, key: NativeKeyInfo) => Promise<T>): Promise<T> {
    this.#assertOpen();
    // A previous re-open failed (token still away): try again first.
    if (this.#session === undefined) await this.#reopen(undefined);
    const generation = this.#generation;
    try {
      return await this.#once(op);
    } catch (err) {
      const e = KeyBackendError.from(err);
      if (NOT_RECOVERABLE.has(e.code) || this.#closed) throw e;
      await this.#reopen(generation);
      return await this.#once(op);
    }
  }

  async #assertKeyVisible(session: NativePkcs11Session): Promise<void> {
    try {
      await native(() => session.findKey(this.#target.key));
    } catch (err) {
      if (!isKeyBackendError(err, 'KEY_NOT_FOUND')) throw err;
      throw new KeyBackendError(
        'SESSION_INVALID',
        'the key is no longer visible in this PKCS#11 session (token removed or reset); the session must be re-opened',
        { cause: err },
      );
    }
  }

  async #once<T>(op: (session: NativePkcs11Session, key: NativeKeyInfo) => Promise<T>): Promise<T> {
    const session = this.#session;
    if (session === undefined) throw new KeyBackendError('SESSION_INVALID', 'the PKCS#11 session is being re-opened');
    return op(session, this.#key);
  }

  /**
   * Re-opens unless a re-open already happened since `seen` (the generation a
   * failed signature used); concurrent callers share the one in flight.
   */
  #reopen(seen: number | undefined): Promise<void> {
    if (this.#reopening) return this.#reopening;
    if (seen !== undefined && seen !== this.#generation && this.#session !== undefined) return Promise.resolve();
    this.#reopening = this.#spacedReopen().finally(() => {
      this.#reopening = undefined;
    });
    return this.#reopening;
  }

  /**
   * How long the next re-open waits: nothing for the first, then doubling while re-opens fail, and
   * at least REOPEN_MIN_INTERVAL_MS after one that succeeded (a token that fails every call even
   * on a fresh session is then re-opened once a second, not once per call). Callers meanwhile
   * share the one pending re-open rather than failing, so a token that comes back is used at once.
   */
  #reopenDelay(): number {
    if (this.#lastReopenAt === 0) return 0;
    const gap =
      this.#failedReopens === 0 ? REOPEN_MIN_INTERVAL_MS : Math.min(REOPEN_MAX_MS, REOPEN_BASE_MS * 2 ** (this.#failedReopens - 1));
    return Math.max(0, this.#lastReopenAt + gap - this.#now());
  }

  async #spacedReopen(): Promise<void> {
    const wait = this.#reopenDelay();
    if (wait > 0) {
      try {
        await sleep(wait, undefined, { signal: this.#closer.signal });
      } catch {
        throw new KeyBackendError('SESSION_INVALID', 'the pkcs11 signer was closed');
      }
    }
    this.#lastReopenAt = this.#now();
    try {
      await this.#doReopen();
      this.#failedReopens = 0;
    } catch (err) {
      this.#failedReopens++;
      throw err;
    }
  }

  async #doReopen(): Promise<void> {
    const old = this.#session;
    this.#session = undefined;
    // Closed first, so that this process holds no session on the module when
    // the new one is opened: a module whose token is missing is then
    // re-initialised once, which is what makes some modules (SoftHSM2 among
    // them) look at their tokens afresh.
    await old?.close().catch(() => undefined);
    this.#assertOpen();
    // A fresh session failed already: some modules (tpm2-pkcs11 after its resource manager restarted)
    // fail every session until they are initialised again.
    const c = await connect(this.#addon, this.#target, this.#pinGuard, this.#failedReopens > 0);
    let key: NativeKeyInfo;
    try {
      key = await native(() => c.session.findKey(this.#target.key));
      checkUsable(key);
      const jwk = publicJwkOf(key);
      if (jwkThumbprint(jwk) !== this.thumbprint) {
        throw new KeyBackendError(
          'KEY_NOT_FOUND',
          'after the token came back, the key found under the same label/id is a different key (its public key changed); ' +
            'refusing to sign with it',
        );
      }
      await proveKeyPair(c.session, key, jwk);
      this.#assertOpen();
    } catch (err) {
      await c.session.close().catch(() => undefined);
      throw err;
    }
    this.#session = c.session;
    this.#token = c.token;
    this.#key = key;
    this.#generation++;
    this.#reopens++;
  }
}
