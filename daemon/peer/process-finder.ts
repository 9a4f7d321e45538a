/**
 * Which process holds a socket, on Linux: the kernel names a socket's inode but
 * not its process, so the daemon looks through /proc/<pid>/fd for a link to
 * `socket:[inode]`. That costs a readlink per open descriptor on the machine,
 * so it is done only when the policy or the audit log needs it, once per
 * connection, and bounded:
 *   - one scan at a time, which answers every inode waiting when it starts
 *     (a burst of connections costs one pass, not one pass each);
 *   - only processes of the uids being asked about are read;
 *   - processes that connected recently are looked at first, and in them the two descriptors after
 *     the last one found (tried before listing the table), then those new since the last pass, then
 *     the rest: a client's next connection is usually one of the first; any is still read if need be;
 *   - a cap on descriptors read and on wall time per scan, after which the
 *     process is "unknown" (an allow_executables rule then refuses);
 *   - a duty cycle: scanning may take at most a fifth of the time (a token
 *     bucket of milliseconds), so a flood of new connections cannot turn it
 *     into a CPU sink; past that, lookups are answered "unknown" at once;
 *   - the event loop is given back every few hundred descriptors.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { PeerProcess } from './types.js';

export interface ProcessFinderOptions {
  procRoot?: string;
  /** Descriptors read per scan before giving up. */
  maxDescriptors?: number;
  /** Wall-clock budget per scan, ms. */
  budgetMs?: number;
  /** Inodes waiting at once; more are answered "unknown" at once. */
  maxPending?: number;
  /** The share of wall time scans may use, 0-1. */
  dutyCycle?: number;
  now?: () => number;
}

interface Waiting {
  uid: number;
  resolve: ((p: PeerProcess | undefined) => void)[];
}

/** A process's descriptor table as its last pass saw it. */
interface Listed {
  readonly fds: ReadonlySet<string>;
  /** The descriptor the last answer was found on, -1 before any. */
  found: number;
}

/**
 * The order to read a recent process's descriptors in: those new since its last pass, then those
 * numbered after the one the last answer was on, then the rest. A client opening connections one after
 * another gets consecutive descriptor numbers (a new one, or a freed one reused in order), so its next
 * connection is usually read first. Every descriptor is still read if need be: only the order changes.
 */
function likelyFirst(fds: string[], before: Listed): string[] {
  const fresh: string[] = [];
  const after: string[] = [];
  const rest: string[] = [];
  for (const fd of fds) {
    if (!before.fds.has(fd)) fresh.push(fd);
    else if (Number(fd) > before.found) after.push(fd);
    else rest.push(fd);
  }
  return [...fresh, ...after, ...rest];
}

const CHUNK = 256;
/** Descriptors after the last answer tried before a recent process's table is listed. */
const GUESSES = 2;

interface Budget {
  started: number;
  read: number;
  ms: number;
}
const RECENT = 32;

/** argv[0] and the executable of a process, as far as /proc lets this user read them. */
export function describeProcess(pid: number, procRoot = '/proc'): PeerProcess {
  let exe: string | null = null;
  let argv0: string | null = null;
  try {
    exe = readlinkSync(`${procRoot}/${pid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    // another user's process, or gone
  }
  try {
    const raw = readFileSync(`${procRoot}/${pid}/cmdline`);
    const end = raw.indexOf(0);
    argv0 =
      raw
        .subarray(0, end < 0 ? Math.min(raw.length, 4096) : end)
        .toString('utf8')
        .slice(0, 256) || null;
  } catch {
    // gone
  }
  return { pid, exe, argv0 };
}

export class ProcessFinder {
  readonly #root: string;
  readonly #maxDescriptors: number;
  readonly #budgetMs: number;
  readonly #maxPending: number;
  readonly #pending = new Map<number, Waiting>();
  #recent: number[] = [];
  /** What each recent process's last pass saw (only recent processes are kept). */
  readonly #listed = new Map<number, Listed>();
  #scanning = false;
  readonly #duty: number;
  readonly #now: () => number;
  /** Milliseconds of scanning allowed now: refilled at `duty` per millisecond, at most one scan's budget. */
  #credit: number;
  #creditAt: number;
  /** Counters for /metrics and the benchmark. */
  readonly stats = { scans: 0, descriptorsRead: 0, tablesListed: 0, unknown: 0, shed: 0 };

  constructor(o: ProcessFinderOptions = {}) {
    this.#root = o.procRoot ?? '/proc';
    this.#maxDescriptors = o.maxDescriptors ?? 50_000;
    this.#budgetMs = o.budgetMs ?? 50;
    this.#maxPending = o.maxPending ?? 256;
    this.#duty = o.dutyCycle ?? 0.2;
    this.#now = o.now ?? Date.now;
    this.#credit = this.#budgetMs;
    this.#creditAt = this.#now();
  }

  #refill(): number {
    const now = this.#now();
    this.#credit = Math.min(this.#budgetMs, this.#credit + (now - this.#creditAt) * this.#duty);
    this.#creditAt = now;
    return this.#credit;
  }

  /** The process holding the socket with this inode, owned by `uid`; undefined when it cannot be found. */
  find(inode: number, uid: number): Promise<PeerProcess | undefined> {
    if (inode === 0) return Promise.resolve(undefined);
    const waiting = this.#pending.get(inode);
    if (!waiting && (this.#pending.size >= this.#maxPending || this.#refill() <= 0)) {
      this.stats.unknown++;
      this.stats.shed++;
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      if (waiting) waiting.resolve.push(resolve);
      else this.#pending.set(inode, { uid, resolve: [resolve] });
      if (!this.#scanning) {
        this.#scanning = true;
        setImmediate(() => void this.#scan());
      }
    });
  }

  #answer(inode: number, p: PeerProcess | undefined): void {
    const w = this.#pending.get(inode);
    if (!w) return;
    this.#pending.delete(inode);
    if (!p) this.stats.unknown++;
    for (const r of w.resolve) r(p);
  }

  /**
   * Every pid but those already tried, newest (highest) first: a client that just connected is likely
   * new. The daemon's own process, which holds the server end of every connection, comes last.
   */
  #others(tried: ReadonlySet<number>): number[] {
    try {
      const pids = readdirSync(this.#root)
        .filter((d) => /^\d+$/.test(d))
        .map(Number)
        .filter((p) => !tried.has(p) && p !== process.pid)
        .sort((a, b) => b - a);
      return tried.has(process.pid) ? pids : [...pids, process.pid];
    } catch {
      return [];
    }
  }

  async #scan(): Promise<void> {
    if (this.#refill() <= 0) {
      // Over the duty cycle: everyone waiting is answered "unknown" now rather than later.
      for (const inode of [...this.#pending.keys()]) {
        this.stats.shed++;
        this.#answer(inode, undefined);
      }
      this.#scanning = false;
      return;
    }
    this.stats.scans++;
    // Inodes that arrive during this scan are answered by it if it still meets them, else by the next one.
    const batch = [...this.#pending.keys()];
    const budget = { started: this.#now(), read: 0, ms: Math.max(1, Math.min(this.#budgetMs, this.#refill())) };
    try {
      const uids = new Set([...this.#pending.values()].map((w) => w.uid));
      // Recent peers first, without listing /proc: an SDK reconnecting is usually one of them.
      const recent = [...this.#recent];
      for (const pid of recent) if (!(await this.#scanProcess(pid, uids, budget))) return;
      // Listing /proc costs a readdir of every pid: only when the recent processes left some unanswered.
      if (this.#pending.size === 0) return;
      for (const pid of this.#others(new Set(recent))) if (!(await this.#scanProcess(pid, uids, budget))) return;
    } finally {
      this.stats.descriptorsRead += budget.read;
      this.#refill();
      this.#credit -= this.#now() - budget.started;
      for (const inode of batch) this.#answer(inode, undefined);
      if (this.#pending.size > 0) setImmediate(() => void this.#scan());
      else this.#scanning = false;
    }
  }

  /** Reads one process's descriptors, answering the inodes it holds; false when the scan should stop. */
  async #scanProcess(pid: number, uids: ReadonlySet<number>, budget: Budget): Promise<boolean> {
    const exhausted = () => this.#pending.size === 0 || budget.read >= this.#maxDescriptors || this.#now() - budget.started > budget.ms;
    if (exhausted()) return false;
    try {
      if (!uids.has(statSync(`${this.#root}/${pid}`).uid)) return true;
    } catch {
      return true; // gone
    }
    const before = this.#listed.get(pid);
    // The descriptors right after the last answer, tried before listing the table (a readdir of every
    // descriptor): a client opening connections one after another is usually answered here.
    const guessed = new Set<string>();
    if (before !== undefined && before.found >= 0) {
      for (let fd = before.found + 1; fd <= before.found + GUESSES; fd++) {
        guessed.add(String(fd));
        if (this.#read(pid, String(fd), budget, undefined) && this.#pending.size === 0) return false;
      }
    }
    let fds: string[];
    try {
      fds = readdirSync(`${this.#root}/${pid}/fd`);
    } catch {
      return true; // gone, or not ours to read
    }
    this.stats.tablesListed++;
    if (before !== undefined) {
      this.#listed.set(pid, { fds: new Set(fds), found: before.found });
      fds = likelyFirst(fds, before);
    }
    for (const fd of fds) {
      if (guessed.has(fd)) continue; // read just above
      // The last one waiting is answered: the rest of this table, and of every other, is not needed.
      if (this.#read(pid, fd, budget, fds) && this.#pending.size === 0) return false;
      if (budget.read % CHUNK === 0) {
        await new Promise<void>((r) => setImmediate(r));
        if (exhausted()) return false;
      }
    }
    return true;
  }

  /** Reads one descriptor of a process (`fds`: its table, if listed); true when it answered someone waiting. */
  #read(pid: number, fd: string, budget: Budget, fds: readonly string[] | undefined): boolean {
    budget.read++;
    let link: string;
    try {
      link = readlinkSync(`${this.#root}/${pid}/fd/${fd}`);
    } catch {
      return false;
    }
    if (!link.startsWith('socket:[')) return false;
    const inode = Number(link.slice(8, -1));
    if (!this.#pending.has(inode)) return false;
    this.#remember(pid);
    // Now a recent process: what this pass saw of it orders its next pass.
    let listed = this.#listed.get(pid);
    if (listed === undefined) {
      listed = { fds: new Set(fds), found: -1 };
      this.#listed.set(pid, listed);
    }
    listed.found = Number(fd);
    this.#answer(inode, describeProcess(pid, this.#root));
    return true;
  }

  #remember(pid: number): void {
    this.#recent = [pid, ...this.#recent.filter((p) => p !== pid)].slice(0, RECENT);
    for (const p of this.#listed.keys()) if (!this.#recent.includes(p)) this.#listed.delete(p);
  }
}
