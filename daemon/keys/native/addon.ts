/**
 * The daemon's view of the native addon (enclave-addon/, built by
 * scripts/build-addon.mjs): its types, and loadAddon(), which never throws.
 * The shapes here mirror enclave-addon/src/binding.cc; keep the two in step.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, parse } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A slot id: a number, or a bigint when it is beyond Number.MAX_SAFE_INTEGER. */
export type NativeSlotId = number | bigint;

export interface NativeTokenInfo {
  slotId: NativeSlotId;
  label: string;
  manufacturer: string;
  model: string;
  serial: string;
  initialized: boolean;
  loginRequired: boolean;
  /** A PIN pad or similar: log in with an empty PIN and the token asks the user. */
  protectedAuthenticationPath: boolean;
  writeProtected: boolean;
  pinCountLow: boolean;
  pinFinalTry: boolean;
  pinLocked: boolean;
}

export interface NativeSlotInfo {
  slotId: NativeSlotId;
  description: string;
  manufacturer: string;
  tokenPresent: boolean;
  removable: boolean;
  hardware: boolean;
  token?: NativeTokenInfo;
  /** Set when a token is present but C_GetTokenInfo failed (the CKR name). */
  tokenError?: string;
}

/** Every field given must match; with none, the module must hold exactly one token. */
export interface NativeTokenSelector {
  label?: string;
  serial?: string;
  manufacturer?: string;
  model?: string;
  slotId?: NativeSlotId;
}

/** At least one of label (CKA_LABEL) and id (CKA_ID). */
export interface NativeKeySelector {
  label?: string;
  id?: Uint8Array;
}

interface NativeKeyInfoBase {
  /** The private key's object handle; valid only in the session that found it. */
  handle: bigint;
  label: string;
  id: Buffer;
  /** CKA_ALWAYS_AUTHENTICATE: the token wants the PIN again for every signature. */
  alwaysAuthenticate: boolean;
}

export interface NativeEcKeyInfo extends NativeKeyInfoBase {
  keyType: 'ec';
  /** The uncompressed P-256 point, 04 || X || Y (65 bytes). */
  publicKey: Buffer;
}

export interface NativeRsaKeyInfo extends NativeKeyInfoBase {
  keyType: 'rsa';
  /** CKA_MODULUS, big-endian, without leading zero bytes (at least 2048 bits). */
  modulus: Buffer;
  /** CKA_PUBLIC_EXPONENT, big-endian. */
  publicExponent: Buffer;
}

export type NativeKeyInfo = NativeEcKeyInfo | NativeRsaKeyInfo;

/** What generateKey makes: P-256 (the default), or RSA of `bits` (2048 by default, 3072 or 4096). */
export interface NativeKeySpec {
  label: string;
  id: Uint8Array;
  type?: 'ec' | 'rsa';
  bits?: number;
}

/** An X.509 certificate object (CKO_CERTIFICATE, CKC_X_509) read from the token. */
export interface NativeCertificateInfo {
  label: string;
  id: Buffer;
  /** CKA_VALUE: the certificate, DER. */
  value: Buffer;
}

/**
 * One PKCS#11 session. Its calls run off the JS thread, one at a time in call order: at most one
 * libuv thread-pool thread per session, so a queue of signatures never starves fs and dns.
 */
export interface NativePkcs11Session {
  token(): Promise<NativeTokenInfo>;
  /**
   * The PIN's bytes are copied and zeroed natively after C_Login; zero yours too. Resolves true
   * when the token answered CKR_USER_ALREADY_LOGGED_IN: it then did not check this PIN.
   */
  login(pin: Uint8Array): Promise<boolean>;
  /** C_Logout: logs every session of this process out of the token. */
  logout(): Promise<void>;
  findKey(key: NativeKeySelector): Promise<NativeKeyInfo>;
  generateKey(key: NativeKeySpec): Promise<NativeKeyInfo>;
  /** Resolves with the number of objects destroyed (private and public key). */
  deleteKey(key: NativeKeySelector): Promise<number>;
  /**
   * The X.509 certificates with this CKA_LABEL and/or CKA_ID, in the token's order (at most 16).
   * Rejects with CERTIFICATE_NOT_FOUND when there is none.
   */
  readCertificates(certificate: NativeKeySelector): Promise<NativeCertificateInfo[]>;
  /**
   * Stores an X.509 certificate (DER, with its subject name DER) as a token object with this id and
   * label, then destroys the other certificates with that id; resolves with how many went. Absent in
   * addons built before it existed.
   */
  storeCertificate?(certificate: { id: Buffer; label: string }, der: Buffer, subject: Buffer): Promise<number>;
  /**
   * EC keys: ECDSA over the 32-byte SHA-256 digest; resolves with r||s (64 bytes). RSA keys:
   * RSASSA-PKCS1-v1_5 with SHA-256, over `data` with CKM_SHA256_RSA_PKCS when given and the token
   * has it, else over the DigestInfo of `digest` with CKM_RSA_PKCS (up to 1 MiB of data).
   */
  sign(handle: bigint, digest: Uint8Array, data?: Uint8Array): Promise<Buffer>;
  /** Idempotent; afterwards every call rejects with SESSION_INVALID. */
  close(): Promise<void>;
}

export interface NativeSecureEnclaveKeyInfo {
  /** The uncompressed P-256 point, 04 || X || Y (65 bytes). */
  publicKey: Buffer;
  /** The key's token object id: an opaque blob only this Mac's Secure Enclave turns back into the key. */
  tokenObject: Buffer;
  userPresence: boolean;
}

export interface NativeSecureEnclaveKey {
  /** Cached when the key was opened: no Security.framework call. */
  info(): NativeSecureEnclaveKeyInfo;
  sign(digest: Uint8Array): Promise<Buffer>;
}

export interface NativeMappedError {
  code: string;
  message: string;
}

/** The owner of one TCP socket, as the kernel reports it (see daemon/peer/native-owner.ts). */
export interface NativeSocketOwner {
  uid: number;
  /** 0 on macOS, and for a socket no process holds (TIME_WAIT, whose uid 0 is not root). */
  inode: number;
  /** Linux's TCP state number on every platform: 1 ESTABLISHED, 6 TIME_WAIT, 10 LISTEN. */
  state: number;
  /** macOS only (Linux finds pids from the inode, in TypeScript). */
  pid?: number;
}

export interface NativeAddon {
  pkcs11: {
    listSlots(modulePath: string): Promise<NativeSlotInfo[]>;
    /**
     * `rescan`: finalise and initialise the module first, when this process holds no other session on
     * it (a re-open after a fresh session failed too: tpm2-pkcs11 after its resource manager restarted).
     */
    openSession(modulePath: string, token: NativeTokenSelector, options?: { rescan?: boolean }): Promise<NativePkcs11Session>;
  };
  secureEnclave: {
    /** Whether this build has the Secure Enclave store at all (macOS). */
    readonly available: boolean;
    /** Why not, when unavailable. */
    readonly reason: string;
    /** Whether this Mac can make Secure Enclave keys (VMs and Intel Macs without a T2 cannot): it makes a throwaway one. */
    probe(): Promise<{ available: boolean; reason: string }>;
    /** A new key, outside the keychain (no entitlement needed). */
    create(userPresence: boolean): Promise<NativeSecureEnclaveKey>;
    /** The key a token object id names; KEY_NOT_FOUND unless its public key is `publicKey`. */
    open(tokenObject: Uint8Array, publicKey: Uint8Array, userPresence: boolean): Promise<NativeSecureEnclaveKey>;
  };
  /** The native DER helpers (the TypeScript ones in ../der.ts do the same). */
  der: {
    toRaw(der: Uint8Array, fieldSize: number): Buffer;
    fromRaw(raw: Uint8Array): Buffer;
    unwrapEcPoint(value: Uint8Array): Buffer;
  };
  /** The native error-mapping tables, exposed so tests check them on every platform. */
  errors: {
    readonly codes: readonly string[];
    fromCkr(rv: number, stage: 'module' | 'session'): NativeMappedError;
    fromOsStatus(status: number): NativeMappedError;
    fromLocalAuth(code: number): NativeMappedError;
    fromCryptoTokenKit(code: number): NativeMappedError;
  };
  /**
   * The TCP socket whose local end is localAddress:localPort and whose remote end is
   * remoteAddress:remotePort, or null when there is none; remotePort 0 on 0.0.0.0 or :: asks for
   * the listener on localAddress:localPort. Synchronous. Throws an Error whose `code` is an errno
   * name: ENOTSUP where there is no native lookup, EINVAL for a bad argument.
   */
  socketOwner(family: 4 | 6, localAddress: string, localPort: number, remoteAddress: string, remotePort: number): NativeSocketOwner | null;
}

export type AddonLoad = { available: true; addon: NativeAddon } | { available: false; reason: string };

const ADDON_RELATIVE = join('enclave-addon', 'build', 'Release', 'credport_enclave.node');
const BUILD_ERROR_RELATIVE = join('enclave-addon', 'build', 'BUILD_ERROR.txt');

/**
 * The package root: the nearest ancestor holding enclave-addon/. Found by
 * walking up rather than by a fixed "../../../.." so that it works from
 * dist/daemon/keys/native/ and from any other layout the build may produce.
 */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'enclave-addon', 'binding.gyp')) || existsSync(join(dir, ADDON_RELATIVE))) return dir;
    const up = dirname(dir);
    if (up === dir || dir === parse(dir).root) return undefined;
    dir = up;
  }
}

let cached: AddonLoad | undefined;

/** Loads the addon once per process; a failure is reported, never thrown. */
export function loadAddon(): AddonLoad {
  cached ??= loadAddonAt(packageRoot());
  return cached;
}

/** Loads the addon built under `root` (uncached; loadAddon() is what the daemon uses). */
export function loadAddonAt(root: string | undefined): AddonLoad {
  if (root === undefined) {
    return { available: false, reason: 'the hardware key addon is not part of this installation (no enclave-addon/ found)' };
  }
  const file = join(root, ADDON_RELATIVE);
  if (!existsSync(file)) {
    return { available: false, reason: `the hardware key addon is not built (${file} is missing)${buildError(root)}` };
  }
  try {
    const require = createRequire(import.meta.url);
    const addon = require(file) as NativeAddon;
    if (typeof addon?.pkcs11?.openSession !== 'function' || typeof addon?.secureEnclave?.probe !== 'function') {
      return { available: false, reason: `${file} is not the credport addon this daemon expects; rebuild it` };
    }
    return { available: true, addon };
  } catch (err) {
    return {
      available: false,
      reason: `the hardware key addon ${file} failed to load: ${(err as Error).message}; rebuild it with: node scripts/build-addon.mjs`,
    };
  }
}

/** The recorded build failure, quoted briefly so that the reason says what to fix. */
function buildError(root: string): string {
  const path = join(root, BUILD_ERROR_RELATIVE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return '; build it with: node scripts/build-addon.mjs';
  }
  const firstLine = text.split('\n')[0]?.trim() ?? '';
  return `; the last build failed: ${firstLine} (details in ${path}; rebuild with: node scripts/build-addon.mjs)`;
}
