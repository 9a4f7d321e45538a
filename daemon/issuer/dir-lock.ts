/**
 * An exclusive lock on an export directory, so that two `oidc export` (or
 * `revoke`, or `key rotate`) runs into one directory read, merge and write one
 * after the other: without it both read the same JWKS and the second rename
 * drops the first one's key. The lock is a file created with O_EXCL naming its
 * holder (pid, process start, host); a holder that died is recognised and its
 * lock broken, so a crash never wedges the directory.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { matchProcess, selfIdentity } from '../service/process-identity.js';
import { parseJsonObject, readSmallFile } from '../util/secure-file.js';

export const LOCK_NAME = '.credport-issuer.lock';

/** A merge takes milliseconds; a lock this old whose holder cannot be proven alive is left over. */
const STALE_AFTER_MS = 120_000;

export class DirLockError extends Error {
  override readonly name = 'DirLockError';
}

export interface DirLockOptions {
  /** How long to wait for another holder, in total. */
  waitMs?: number;
  now?: () => number;
  sleep?: (ms: number) => void;
}

/** Blocks the thread: the export is synchronous, and its callers (tests, the demo) rely on that. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

interface Holder {
  pid: number;
  start?: string;
  host: string;
}

function holderOf(path: string): Holder | undefined {
  const r = parseJsonObject(readSmallFile(path, 4096) ?? '');
  if (!r || !Number.isInteger(r.pid) || typeof r.host !== 'string') return undefined;
  return { pid: r.pid as number, host: r.host, ...(typeof r.start === 'string' ? { start: r.start } : {}) };
}

/** Whether the lock at `path` (with inode `ino`) is provably left over by a process that is gone. */
function isStale(path: string, ino: number, now: number): boolean {
  let st;
  try {
    st = statSync(path);
  } catch {
    return false;
  }
  if (st.ino !== ino) return false;
  const holder = holderOf(path);
  // Half-written or foreign content: only age can tell (the writer fills it right after creating it).
  if (!holder) return now - st.mtimeMs > STALE_AFTER_MS;
  if (holder.host !== hostname()) return now - st.mtimeMs > STALE_AFTER_MS;
  const m = matchProcess({ pid: holder.pid, ...(holder.start ? { start: holder.start } : {}) });
  if (m === 'gone' || m === 'different') return true;
  return m === 'unknown' && now - st.mtimeMs > STALE_AFTER_MS;
}

/**
 * Moves a stale lock aside under a private name, then checks that what moved is the lock judged
 * stale: if another waiter broke it and took the lock in between, its fresh lock is put back.
 */
function breakStale(path: string, ino: number): void {
  const aside = `${path}.stale.${randomBytes(6).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch {
    return;
  }
  try {
    if (statSync(aside).ino !== ino) {
      try {
        linkSync(aside, path);
      } catch {
        // A third process took the lock meanwhile. Two holders at once is possible only here, after
        // a lock was judged stale (its holder gone) twice in the same few milliseconds.
      }
    }
  } finally {
    try {
      unlinkSync(aside);
    } catch {}
  }
}

/** Runs `fn` holding the directory's lock; the lock is released whatever `fn` does. */
export function withDirLock<T>(dir: string, fn: () => T, o: DirLockOptions = {}): T {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? sleepSync;
  const waitMs = o.waitMs ?? 30_000;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_NAME);
  const me = selfIdentity();
  const record = JSON.stringify({ pid: process.pid, ...(me.start ? { start: me.start } : {}), host: hostname() });
  const deadline = now() + waitMs;
  let delay = 5;
  let broken = 0;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DirLockError(`cannot lock ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'}); is it writable?`);
      }
    }
    if (fd !== undefined) {
      let ino: number;
      try {
        writeSync(fd, record);
        ino = fstatSync(fd).ino;
      } finally {
        closeSync(fd);
      }
      try {
        return fn();
      } finally {
        // Only our own lock is removed: if it was (wrongly) broken and replaced, the other holder's stays.
        try {
          if (statSync(path).ino === ino) unlinkSync(path);
        } catch {}
      }
    }
    let ino: number | undefined;
    try {
      ino = statSync(path).ino;
    } catch {
      // Released between our open and our stat: try again, still within the deadline below.
    }
    // Bounded: a lock that keeps reappearing stale is not something to fight in a loop.
    if (ino !== undefined && broken < 5 && isStale(path, ino, now())) {
      broken++;
      breakStale(path, ino);
      continue;
    }
    if (now() >= deadline) {
      const h = holderOf(path);
      throw new DirLockError(
        `${dir} is locked by ${h ? `pid ${h.pid} on ${h.host}` : 'another process'} (${path}); wait for it, or remove the lock if that process is gone`,
      );
    }
    // Jittered so that a crowd of waiters does not retry in step.
    sleep(delay / 2 + Math.random() * delay);
    delay = Math.min(delay * 2, 200);
  }
}
