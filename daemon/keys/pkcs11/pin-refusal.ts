/**
 * Remembers, across processes, that a token refused the PIN in a PIN file.
 *
 * `credential_process` starts a new credport process for every AWS CLI call, and a token locks its
 * PIN after a few wrong tries (a YubiKey after three). Without a memory that outlives the process,
 * a wrong PIN file would spend one try per CLI call and lock the token within a minute. After a
 * refusal, a small marker in the state directory records the PIN file's identity (device, inode,
 * size, modification and change times, and an HMAC of its contents under a random key kept in
 * the state directory: a plain hash of a short PIN would give the PIN away to anyone who reads
 * the marker); while the file is unchanged, no process offers that PIN again. Any write to the
 * file changes its identity and lifts the refusal.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createSecretFile, readSecretFile } from '../../util/secure-file.js';
import { KeyBackendError, type KeyBackendErrorCode } from '../errors.js';

interface FileIdentity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  contents: string;
}

interface Marker extends FileIdentity {
  pinFile: string;
  code: KeyBackendErrorCode;
  at: string;
}

/** The marker file for `pinFile` in `stateDir`: one per PIN file, named by a hash of its path. */
export function pinRefusalMarker(stateDir: string, pinFile: string): string {
  const name = createHash('sha256').update(resolve(pinFile)).digest('hex').slice(0, 24);
  return join(stateDir, `pkcs11-pin-refused-${name}.json`);
}

/** The HMAC key for contents, created on first use (0600, exclusively; a racing creator's key wins). */
function contentKey(stateDir: string): Buffer {
  const path = join(stateDir, 'pkcs11-pin-refusal.key');
  try {
    createSecretFile(path, randomBytes(32));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readSecretFile(path, 'PIN refusal key', 'delete it; credport creates a new one');
}

function identity(stateDir: string, pinFile: string): FileIdentity | undefined {
  let contents: Buffer;
  try {
    const st = statSync(pinFile, { bigint: true });
    contents = readSecretFile(pinFile, 'PIN file', 'create it (mode 0600) holding the token PIN');
    try {
      const mac = createHmac('sha256', contentKey(stateDir)).update(contents).digest('hex');
      return {
        dev: String(st.dev),
        ino: String(st.ino),
        size: String(st.size),
        mtimeNs: String(st.mtimeNs),
        ctimeNs: String(st.ctimeNs),
        contents: mac,
      };
    } finally {
      contents.fill(0);
    }
  } catch {
    return undefined; // a missing or unsafe PIN file is reported by the PIN reader, with its own hint
  }
}

function readMarker(path: string): Marker | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text.length > 4096 ? '' : text) as Partial<Marker>;
    return typeof v === 'object' && v !== null && typeof v.ino === 'string' ? (v as Marker) : undefined;
  } catch {
    return undefined; // unreadable: treated as absent, and replaced on the next refusal
  }
}

const sameFile = (a: FileIdentity, b: FileIdentity): boolean =>
  a.dev === b.dev &&
  a.ino === b.ino &&
  a.size === b.size &&
  a.mtimeNs === b.mtimeNs &&
  a.ctimeNs === b.ctimeNs &&
  a.contents === b.contents;

/** Throws the recorded refusal while the PIN file is the one the token refused; otherwise returns. */
export function assertPinNotRefused(stateDir: string, pinFile: string): void {
  const path = pinRefusalMarker(stateDir, pinFile);
  const marker = readMarker(path);
  if (marker === undefined) return;
  const now = identity(stateDir, pinFile);
  if (now === undefined || !sameFile(marker, now)) return;
  const code: KeyBackendErrorCode = marker.code === 'PIN_LOCKED' ? 'PIN_LOCKED' : 'PIN_INCORRECT';
  throw new KeyBackendError(
    code,
    `the token ${code === 'PIN_LOCKED' ? 'reported its PIN locked' : 'refused the PIN'} in ${pinFile} at ${marker.at}; ` +
      'so as not to spend another of its few tries, credport will not offer that PIN again until the file changes. ' +
      `Write the correct PIN to ${pinFile} (any write lifts this)` +
      `${code === 'PIN_LOCKED' ? " after unblocking the PIN with the token's SO PIN or PUK" : ''}, or delete ${path}`,
  );
}

/** Records that the token refused the PIN now in `pinFile` (0600, created whole). */
export function recordPinRefusal(stateDir: string, pinFile: string, code: KeyBackendErrorCode): void {
  const id = identity(stateDir, pinFile);
  if (id === undefined) return;
  const path = pinRefusalMarker(stateDir, pinFile);
  const marker: Marker = { pinFile: resolve(pinFile), ...id, code, at: new Date().toISOString() };
  clearPinRefusal(stateDir, pinFile);
  try {
    createSecretFile(path, `${JSON.stringify(marker)}\n`);
  } catch (err) {
    // Another process recorded the same refusal a moment ago: that marker says the same.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Forgets a refusal (after the token accepted a PIN from this file). */
export function clearPinRefusal(stateDir: string, pinFile: string): void {
  try {
    unlinkSync(pinRefusalMarker(stateDir, pinFile));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
