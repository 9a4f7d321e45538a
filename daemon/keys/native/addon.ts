/**
 * The daemon's view of the native addon (enclave-addon/, built by
 * scripts/build-addon.mjs): its types, and loadAddon(), which never throws.
 * The shapes here mirror enclave-addon/src/binding.cc; keep the two in step.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, parse } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeTokenInfo {
  slotId: number;
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
  slotId: number;
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
  slotId?: number;
}

/** At least one of label (CKA_LABEL) and id (CKA_ID). */
export interface NativeKeySelector {
  label?: string;
  id?: Uint8Array;
}

export interface NativeKeyInfo {
  /** The private key's object handle; valid only in the session that found it. */
  handle: bigint;
  label: string;
  id: Buffer;
  /** The uncompressed P-256 point, 04 || X || Y (65 bytes). */
  publicKey: Buffer;
  /** CKA_ALWAYS_AUTHENTICATE: the token wants the PIN again for every signature. */
  alwaysAuthenticate: boolean;
}

/** An X.509 certificate object (CKO_CERTIFICATE, CKC_X_509) read from the token. */
export interface NativeCertificateInfo {
  label: string;
  id: Buffer;
  /** CKA_VALUE: the certificate, DER. */
  value: Buffer;
}

/** One PKCS#11 session. Calls are serialised natively and run off the JS thread. */
export interface NativePkcs11Session {
  token(): Promise<NativeTokenInfo>;
  /** The PIN's bytes are copied and zeroed natively after C_Login; zero yours too. */
  login(pin: Uint8Array): Promise<void>;
  findKey(key: NativeKeySelector): Promise<NativeKeyInfo>;
  generateKey(key: { label: string; id: Uint8Array }): Promise<NativeKeyInfo>;
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
  /** ECDSA over a 32-byte digest; resolves with r||s (64 bytes). */
  sign(handle: bigint, digest: Uint8Array): Promise<Buffer>;
  /** Idempotent; afterwards every call rejects with SESSION_INVALID. */
  close(): Promise<void>;
}

export interface NativeSecureEnclaveKeyInfo {
  tag: string;
  publicKey: Buffer;
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
    openSession(modulePath: string, token: NativeTokenSelector): Promise<NativePkcs11Session>;
  };
  secureEnclave: {
    readonly available: boolean;
    /** Why not, when unavailable. */
    readonly reason: string;
    create(tag: string, userPresence: boolean): Promise<NativeSecureEnclaveKey>;
    open(tag: string): Promise<NativeSecureEnclaveKey>;
    remove(tag: string): Promise<void>;
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
    if (typeof addon?.pkcs11?.openSession !== 'function' || typeof addon?.secureEnclave?.open !== 'function') {
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
