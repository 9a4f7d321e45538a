/**
 * Files that hold secrets (keys, tokens) are created 0600 without a window in
 * which another user could open them, and refused on read when their mode lets
 * anyone else in: a key another account could have read is not a device key.
 */
import { nodeCrypto } from './node-crypto.js';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

export class InsecureFileError extends Error {
  override readonly name = 'InsecureFileError';
  constructor(
    readonly path: string,
    readonly mode: number,
    what: string,
  ) {
    super(`${what} ${path} is readable by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` + `run: chmod 600 '${path}'`);
  }
}

export class SecretFileNotFoundError extends Error {
  override readonly name = 'SecretFileNotFoundError';
  constructor(
    readonly path: string,
    what: string,
    hint: string,
  ) {
    super(`${what} ${path} does not exist; ${hint}`);
  }
}

/**
 * A secret file that is not a plain file of ours: a symbolic link, a FIFO or
 * device, another user's file, or one we may not open. A config-class problem
 * (exit 3), like an insecure mode.
 */
export class UnsafeFileError extends Error {
  override readonly name = 'UnsafeFileError';
}

/**
 * Reads a secret file after checking it is a regular file owned by us with no
 * group/other bits. The checks run on the open descriptor (opened without
 * following a symlink), so the file checked is the file read.
 */
export function readSecretFile(path: string, what: string, missingHint: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SecretFileNotFoundError(path, what, missingHint);
    if (code === 'ELOOP') throw new UnsafeFileError(`${what} ${path} is a symbolic link; refusing it (point the config at the real file)`);
    if (code === 'EACCES' || code === 'EPERM')
      throw new UnsafeFileError(`${what} ${path} cannot be opened by this user (${code}); it must belong to this user, mode 0600`);
    if (code === 'ENXIO' || code === 'EISDIR') throw new UnsafeFileError(`${what} ${path} is not a regular file`);
    throw err;
  }
  try {
    assertPrivateFile(fd, path, what);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The checks behind readSecretFile, on an open descriptor: a regular file,
 * owned by us, with no group/other bits. Throws a one-line error otherwise.
 */
export function assertPrivateFile(fd: number, path: string, what: string): void {
  const st = fstatSync(fd);
  if (!st.isFile()) throw new UnsafeFileError(`${what} ${path} is not a regular file (a FIFO, device or directory); refusing it`);
  if ((st.mode & 0o077) !== 0) throw new InsecureFileError(path, st.mode, what);
  // The effective uid: the one the kernel checks, and the one `init --system` takes on to open the account's key.
  const uid = process.geteuid?.() ?? process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new UnsafeFileError(`${what} ${path} belongs to uid ${st.uid}, not to this user (uid ${uid}); refusing to use it`);
  }
}

/**
 * A small state file (lock, runtime file) as text, or undefined when it is
 * absent, not a regular file, a symlink, or larger than `maxBytes`: opened
 * non-blocking so that a FIFO put in its place cannot hang the caller.
 */
export function readSmallFile(path: string, maxBytes = 64 * 1024): string | undefined {
  return readStateFile(path, maxBytes, false);
}

/** readSmallFile, and undefined too when assertPrivateFile refuses it (not this user's, or group/other bits). */
export function readPrivateSmallFile(path: string, maxBytes = 64 * 1024): string | undefined {
  return readStateFile(path, maxBytes, true);
}

function readStateFile(path: string, maxBytes: number, privateOnly: boolean): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    // Its refusal is caught below: a state file that fails the check reads as absent.
    if (privateOnly) assertPrivateFile(fd, path, 'state file');
    return readFileSync(fd, 'utf8');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** A JSON object from text, or undefined when the text is not one (state files are never trusted). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Creates the parent directory (0700 when new) so that secret files never sit in a world-listable new dir. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes a new secret file: created with O_EXCL at mode 0600, so it never exists
 * with wider permissions and an existing file is never overwritten.
 */
export function createSecretFile(path: string, data: string | Uint8Array): void {
  ensurePrivateDir(dirname(path));
  // Written whole under a private name, then linked into place: link fails with EEXIST if the file
  // exists, and a second writer (the daemon and `credport env` creating the same secret) that loses
  // the race reads a complete file, never an empty or half-written one.
  const tmp = `${path}.${process.pid}.${nodeCrypto().randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    linkSync(tmp, path);
  } finally {
    unlinkSync(tmp);
  }
}

/** Replaces a file atomically (temp file + rename) with the given mode. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
