/**
 * The daemon's log file, written in-process and rotated by size. A failed
 * write (a full disk, a removed directory) costs the lines of that batch and
 * nothing else: the next batch tries again, reopening the file, so logging
 * resumes by itself once space is back. Complaints go to stderr at most once
 * a minute, with the count of lines lost. (The worker-thread transport this
 * replaces died on the first ENOSPC and flooded stderr for ever after.)
 *
 * `file` is the file being written; older ones are NAME.N.ext, the highest N
 * the most recent, and only the newest `keep` of them are kept.
 */
import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

export interface RotatingFileOptions {
  file: string;
  /** Rotate before a write would take the file past this many bytes. */
  maxBytes: number;
  /** Old files kept besides the current one. */
  keep: number;
  /** Where complaints go (stderr by default); one line each. */
  complain?: (line: string) => void;
  now?: () => number;
}

/** At most one complaint per interval, however many writes fail. */
const COMPLAINT_INTERVAL_MS = 60_000;
/** Lines waiting for the next write are bounded too: beyond this they are dropped (and counted). */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** "512k", "10m", "1g" → bytes. */
export function parseSize(size: string): number {
  const m = /^([1-9][0-9]*)([kmg])$/.exec(size);
  if (!m) throw new Error(`"${size}" is not a size like 512k, 10m or 1g`);
  return Number(m[1]) * { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2] as 'k' | 'm' | 'g'];
}

const open = new Set<RotatingFileWriter>();
let exitHook = false;

export class RotatingFileWriter {
  readonly #o: Required<RotatingFileOptions>;
  #fd: number | undefined;
  #size = 0;
  #pending: string[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  /** The file ends in the middle of a line (a write failed half-way): the next write starts a new line. */
  #partial = false;
  #dropped = 0;
  #lastError = '';
  #lastComplaint = -Infinity;
  #closed = false;

  constructor(options: RotatingFileOptions) {
    this.#o = {
      complain: (line) => process.stderr.write(line),
      now: () => Date.now(),
      ...options,
    };
    open.add(this);
    if (!exitHook) {
      exitHook = true;
      // Lines logged just before exit (the "stopped" line) are written even if no tick follows.
      process.once('exit', () => {
        for (const w of open) w.flushSync();
      });
    }
  }

  /** Lines written but not yet acknowledged by the file system: what a full disk costs. */
  get dropped(): number {
    return this.#dropped;
  }

  write(chunk: string): boolean {
    if (this.#closed) return false;
    const bytes = Buffer.byteLength(chunk);
    if (this.#pendingBytes + bytes > MAX_PENDING_BYTES) {
      this.#dropped += 1;
      return true;
    }
    this.#pending.push(chunk);
    this.#pendingBytes += bytes;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flushSync());
    }
    return true;
  }

  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  end(): void {
    this.flushSync();
    this.#closed = true;
    this.#closeFd();
    open.delete(this);
  }

  flushSync(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const lines = this.#pending.length;
    const data = this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      this.#ensureOpen();
      if (this.#dropped > 0) this.#writeNote();
      this.#append(data);
    } catch (err) {
      this.#failed(err, lines);
    }
  }

  #ensureOpen(): void {
    if (this.#fd !== undefined) return;
    mkdirSync(dirname(this.#o.file), { recursive: true, mode: 0o700 });
    const fd = openSync(this.#o.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      // A file that existed with wider permissions is brought back to 0600: logs name roles and accounts.
      fchmodSync(fd, 0o600);
      this.#size = fstatSync(fd).size;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.#fd = fd;
  }

  #append(data: string): void {
    if (this.#size > 0 && this.#size + Buffer.byteLength(data) > this.#o.maxBytes) this.#rotate();
    const buf = Buffer.from(this.#partial ? `\n${data}` : data);
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.#fd!, buf, off, buf.length - off);
    } finally {
      this.#size += off;
      if (off > 0) this.#partial = off < buf.length;
    }
  }

  /** Says, in the log itself, what a failure cost, once writing works again. */
  #writeNote(): void {
    const note = {
      level: 40,
      time: new Date(this.#o.now()).toISOString(),
      pid: process.pid,
      msg: `${this.#dropped} log line(s) were lost: the log file could not be written (${this.#lastError})`,
    };
    const dropped = this.#dropped;
    this.#append(`${JSON.stringify(note)}\n`);
    this.#dropped = 0;
    this.#complain(`credport: the log file ${this.#o.file} is writable again; ${dropped} line(s) were lost\n`);
  }

  /** One stderr line per interval at most, whatever happens: stderr is often the journal, which a flood would fill. */
  #complain(line: string): void {
    const now = this.#o.now();
    if (now - this.#lastComplaint < COMPLAINT_INTERVAL_MS) return;
    this.#lastComplaint = now;
    this.#o.complain(line);
  }

  #failed(err: unknown, lines: number): void {
    this.#dropped += lines;
    this.#lastError = (err as NodeJS.ErrnoException).code ?? 'error';
    // Reopened on the next write: the directory or file may have been removed or replaced meanwhile.
    this.#closeFd();
    this.#complain(
      `credport: cannot write the log file ${this.#o.file} (${this.#lastError}); ${this.#dropped} line(s) lost so far; retrying with every new line (next notice in a minute at most)\n`,
    );
  }

  #rotate(): void {
    const { file, keep } = this.#o;
    const dir = dirname(file);
    const ext = extname(file);
    const stem = basename(file, ext);
    const pattern = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)${ext.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    try {
      const numbers = readdirSync(dir)
        .map((f) => pattern.exec(f)?.[1])
        .filter((n): n is string => n !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
      const next = (numbers.at(-1) ?? 0) + 1;
      renameSync(file, join(dir, `${stem}.${next}${ext}`));
      numbers.push(next);
      for (const n of numbers.slice(0, Math.max(0, numbers.length - keep))) {
        try {
          unlinkSync(join(dir, `${stem}.${n}${ext}`));
        } catch {
          // already gone
        }
      }
    } catch (err) {
      // Could not rotate (permissions on the directory): keep appending to the current file rather than lose lines.
      this.#complain(
        `credport: cannot rotate the log file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); it keeps growing\n`,
      );
      return;
    }
    this.#closeFd();
    this.#partial = false;
    this.#ensureOpen();
  }

  #closeFd(): void {
    if (this.#fd === undefined) return;
    try {
      closeSync(this.#fd);
    } catch {
      // nothing more to lose
    }
    this.#fd = undefined;
  }
}
