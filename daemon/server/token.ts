/**
 * The ECS endpoint's bearer token: 256 random bits in a 0600 file without a
 * trailing newline (botocore rejects a token containing CR or LF). A new token
 * is written at every start (rotateTokenFile), so a token that leaked, or that
 * a squatter on the port collected while the daemon was down, dies with the
 * daemon that issued it. `credport token rotate` replaces it while the daemon
 * runs (token-file-watch.ts). SDKs that re-read the token file keep working; a
 * shell that exported the token inline needs `credport env` again.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import { createSecretFile, ensurePrivateDir, readSecretFile, SecretFileNotFoundError, writeFileAtomic } from '../util/secure-file.js';
import { readTokenFile } from './token-file.js';

export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Loads the token file, creating it when absent. Weak or malformed tokens are refused, not repaired. */
export function ensureTokenFile(path: string): string {
  try {
    return readTokenFile(path);
  } catch (err) {
    if ((err as Error).name !== 'SecretFileNotFoundError') throw err;
  }
  const token = generateToken();
  try {
    createSecretFile(path, token);
  } catch (err) {
    // Another process created it between our read and our create: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readTokenFile(path);
    throw err;
  }
  return token;
}

/**
 * Replaces the token with a new one, atomically (readers see the old or the new token, never a
 * partial one). An existing file must pass the same checks as when read (ours, 0600, not a link):
 * a file planted by someone else is refused rather than overwritten.
 */
export function rotateTokenFile(path: string): string {
  try {
    readSecretFile(path, 'token file', '');
  } catch (err) {
    if (!(err instanceof SecretFileNotFoundError)) throw err;
  }
  const token = generateToken();
  ensurePrivateDir(dirname(path));
  writeFileAtomic(path, token, 0o600);
  return token;
}

/**
 * The presented token against the daemon's, and once more after re-reading a token file that
 * changed (a rotation the daemon has not been told of yet).
 */
export function daemonTokenMatches(ctx: { daemonToken: string; refreshToken?: () => boolean }, presented: string): boolean {
  if (tokensEqual(presented, ctx.daemonToken)) return true;
  return ctx.refreshToken?.() === true && tokensEqual(presented, ctx.daemonToken);
}

/**
 * Constant-time comparison: both sides are hashed first so that neither the
 * content nor the length of the expected token shows in the timing.
 */
let expectedCache: { token: string; digest: Buffer } | undefined;

export function tokensEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  // The expected token is the same on every request: its digest is computed once (a hash per request saved).
  if (expectedCache?.token !== expected)
    expectedCache = { token: expected, digest: createHash('sha256').update(expected, 'utf8').digest() };
  return timingSafeEqual(a, expectedCache.digest);
}

/**
 * The token a connection already presented and had accepted, with the expected token it matched.
 * A kept-alive SDK sends the same header on every request: once a connection has shown the token,
 * an exact match against what that same connection sent before reveals nothing its client does not
 * already hold, so the hash is paid once per connection, not once per request.
 */
const acceptedOn = new WeakMap<Socket, { presented: string; expected: string }>();

/** tokensEqual, remembered per connection; anything but an exact repeat is compared by tokensEqual. */
export function connectionTokenEqual(socket: Socket, presented: string, expected: string): boolean {
  const seen = acceptedOn.get(socket);
  if (seen !== undefined && seen.expected === expected && seen.presented === presented) return true;
  if (!tokensEqual(presented, expected)) return false;
  acceptedOn.set(socket, { presented, expected });
  return true;
}
