/**
 * One daemon per user (per lock file): a pid file created with O_EXCL. A lock
 * left by a process that no longer exists is taken over; a live one is an
 * error that names its pid.
 */
import { closeSync, constants, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
  constructor(readonly pid: number, readonly lockFile: string) {
    super(`credport is already running (pid ${pid}, lock ${lockFile}); stop it first, or use 'credport reload' to apply a new config`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid recorded in a lock file, if the file exists and holds one. */
export function readLockPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the running daemon that owns this lock, or undefined when none runs. */
export function runningPid(path: string): number | undefined {
  const pid = readLockPid(path);
  return pid !== undefined && alive(pid) ? pid : undefined;
}

export interface InstanceLock {
  release(): void;
}

export function acquireInstanceLock(path: string): InstanceLock {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = readLockPid(path);
      if (pid !== undefined && pid !== process.pid && alive(pid)) throw new AlreadyRunningError(pid, path);
      // Stale (crashed daemon, or a half-written file): remove it and try again.
      try {
        unlinkSync(path);
      } catch {
        // someone else removed it first
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return {
      release() {
        if (readLockPid(path) === process.pid) {
          try {
            unlinkSync(path);
          } catch {
            // already gone
          }
        }
      },
    };
  }
  throw new Error(`could not take the lock ${path}; remove it if no credport is running`);
}
