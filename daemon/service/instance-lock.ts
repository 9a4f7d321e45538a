/**
 * One daemon per user (per lock file). The lock names the daemon by pid,
 * process start time, executable and a random instance id, so a lock left
 * behind by a crash is recognised as stale even when its pid now belongs to
 * another program, and nothing is ever signalled on the strength of a pid
 * alone. The file is written in full to a temp file and linked into place,
 * so a second starter never reads it half-written.
 */
import { nodeCrypto } from '../util/node-crypto.js';
import { closeSync, constants, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseJsonObject, readSmallFile } from '../util/secure-file.js';
import { matchProcess, selfIdentity, type Match } from './process-identity.js';

export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
  constructor(
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(`credport is already running (pid ${pid}, lock ${lockFile}); stop it first, or use 'credport reload' to apply a new config`);
  }
}

export interface LockRecord {
  pid: number;
  /** Opaque process start time (see process-identity.ts); absent where the platform cannot tell. */
  start?: string;
  exe?: string;
  /** Random per start: tells this daemon's lock (and runtime file) from any other. */
  instance: string;
}

function parseRecord(text: string): LockRecord | undefined {
  const r = parseJsonObject(text);
  if (!r) return undefined;
  if (!Number.isInteger(r.pid) || (r.pid as number) <= 0 || typeof r.instance !== 'string') return undefined;
  if (r.start !== undefined && typeof r.start !== 'string') return undefined;
  if (r.exe !== undefined && typeof r.exe !== 'string') return undefined;
  return {
    pid: r.pid as number,
    instance: r.instance,
    ...(typeof r.start === 'string' ? { start: r.start } : {}),
    ...(typeof r.exe === 'string' ? { exe: r.exe } : {}),
  };
}

/** Never trusted: a FIFO or a huge file in the lock's place reads as "no lock text". */
function readText(path: string): string | undefined {
  return readSmallFile(path, 4096);
}

/** The record in a lock file, if the file exists and holds a well-formed one. */
export function readLock(path: string): LockRecord | undefined {
  const text = readText(path);
  return text === undefined ? undefined : parseRecord(text);
}

/** The pid recorded in a lock file, if the file exists and holds one. */
export function readLockPid(path: string): number | undefined {
  return readLock(path)?.pid;
}

export type LockOwner =
  | { state: 'none' }
  /** A lock whose process is gone, or is provably another program (a reused pid). */
  | { state: 'stale'; record: LockRecord }
  | { state: 'running'; record: LockRecord; proven: boolean };

/** Who holds the lock: nobody, a dead or impostor process, or a live daemon (proven = start time checked). */
export function lockOwner(path: string): LockOwner {
  const record = readLock(path);
  if (!record) return { state: 'none' };
  const m: Match = matchProcess(record);
  if (m === 'gone' || m === 'different') return { state: 'stale', record };
  return { state: 'running', record, proven: m === 'same' };
}

/** The pid of the running daemon that owns this lock, or undefined when none runs. */
export function runningPid(path: string): number | undefined {
  const o = lockOwner(path);
  return o.state === 'running' ? o.record.pid : undefined;
}

export interface InstanceLock {
  readonly record: LockRecord;
  release(): void;
}

function writeTemp(path: string, text: string): string {
  const tmp = `${path}.${process.pid}.${nodeCrypto().randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Moves a stale lock out of the way, but only the one that was judged: it is
 * renamed aside first, and if what was moved is not the text that was read
 * (another starter replaced it meanwhile), it is put back.
 */
function removeStale(path: string, judged: string): void {
  const aside = `${path}.${process.pid}.${nodeCrypto().randomBytes(6).toString('hex')}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else removed it first
  }
  if (readText(aside) !== judged) {
    try {
      linkSync(aside, path);
    } catch {
      // A third starter took the path meanwhile; it holds the lock now.
    }
  }
  unlinkQuiet(aside);
}

export function acquireInstanceLock(path: string): InstanceLock {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const record: LockRecord = { ...selfIdentity(), instance: nodeCrypto().randomBytes(16).toString('hex') };
  const text = `${JSON.stringify(record)}\n`;
  const tmp = writeTemp(path, text);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        // link() fails with EEXIST when the lock is held: the file appears complete, or not at all.
        linkSync(tmp, path);
        return {
          record,
          release() {
            if (readLock(path)?.instance === record.instance) unlinkQuiet(path);
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const current = readText(path);
      if (current === undefined) continue; // released between our link and our read
      const held = parseRecord(current);
      if (held && held.pid !== process.pid) {
        const m = matchProcess(held);
        if (m === 'same' || m === 'unknown') throw new AlreadyRunningError(held.pid, path);
      }
      // Stale: a crashed daemon, a pid now owned by another program, or a file credport did not write.
      removeStale(path, current);
    }
  } finally {
    unlinkQuiet(tmp);
  }
  throw new Error(`could not take the lock ${path}; remove it if no credport is running`);
}
