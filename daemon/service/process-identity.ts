/**
 * Who a pid is, beyond its number: after a reboot or a long uptime the same
 * pid can belong to any program, so a process is identified by pid + start
 * time (with the boot it started in) + executable. Linux reads /proc; macOS
 * asks ps (best effort); elsewhere the start time is unknown.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface ProcessIdentity {
  pid: number;
  /** Opaque: equal for the same process, different for a later one with the same pid. */
  start?: string;
  exe?: string;
}

/** 'same': proven to be the recorded process; 'different': proven not; 'unknown': alive but unprovable. */
export type Match = 'same' | 'different' | 'gone' | 'unknown';

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Boot id + field 22 of /proc/PID/stat (start time in clock ticks since that boot). */
function linuxStart(pid: number): string | undefined {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = rest[19]; // rest[0] is field 3, so field 22 is rest[19]
  if (!ticks || !/^\d+$/.test(ticks)) return undefined;
  const boot = readOr('/proc/sys/kernel/random/boot_id')?.trim() ?? 'boot';
  return `${boot}:${ticks}`;
}

function linuxExe(pid: number): string | undefined {
  try {
    // A binary replaced by an upgrade while running reads as "PATH (deleted)"; it is still the same program.
    return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined; // another user's process without privileges
  }
}

function ps(pid: number, field: string): string | undefined {
  // Required here: only macOS asks ps, and the CLI's slim path should not load child_process on Linux.
  const { spawnSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const r = spawnSync('ps', ['-o', `${field}=`, '-p', String(pid)], {
    encoding: 'utf8',
    timeout: 2000,
    env: { PATH: '/bin:/usr/bin', LC_ALL: 'C' },
  });
  const out = r.status === 0 ? r.stdout.trim() : '';
  return out === '' ? undefined : out;
}

/** The identity of a live process, as far as this platform can tell. */
export function identify(pid: number): ProcessIdentity {
  if (process.platform === 'linux') {
    const start = linuxStart(pid);
    const exe = linuxExe(pid);
    return { pid, ...(start ? { start } : {}), ...(exe ? { exe } : {}) };
  }
  if (process.platform === 'darwin') {
    // ps's command name is not reliably the full executable path, so only the start time is compared.
    const start = ps(pid, 'lstart');
    return { pid, ...(start ? { start } : {}) };
  }
  return { pid };
}

export function selfIdentity(): ProcessIdentity {
  const me = identify(process.pid);
  return { ...me, exe: me.exe ?? process.execPath };
}

/**
 * Whether the process now running as `recorded.pid` is the one recorded. A
 * differing start time or executable proves it is another program; a
 * matching start time proves it is the same.
 */
export function matchProcess(recorded: ProcessIdentity): Match {
  if (!alive(recorded.pid)) return 'gone';
  const now = identify(recorded.pid);
  if (recorded.start !== undefined && now.start !== undefined && recorded.start !== now.start) return 'different';
  if (recorded.exe !== undefined && now.exe !== undefined && recorded.exe !== now.exe) return 'different';
  if (recorded.start !== undefined && now.start !== undefined) return 'same';
  return 'unknown';
}
