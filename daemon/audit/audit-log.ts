/**
 * The audit log the server calls for every credential it hands out.
 *
 * record() never waits and never throws: it turns the event into a line and
 * queues it; one writer appends queued lines in order. Serving must not wait
 * on a disk, and a disk must not take the daemon down, so:
 * - the queue is bounded; lines that do not fit are counted, and once writing
 *   works again one `{"time","dropped":N}` line says how many are missing;
 * - a write or open error is reported through onError at most once a minute,
 *   and the writer retries (re-opening, re-creating the directory) on a timer;
 * - before each batch the writer checks the path still names the file it
 *   holds, so a file or directory removed under it is noticed and re-created.
 * Repeated handouts are summarised (see repeats.ts); rotation is by size (see
 * audit-file.ts for the names).
 */
import { checkAuditFile, openAuditFile, rotateAuditFiles, stillThere, type OpenAuditFile } from './audit-file.js';
import { formatDropped, formatEntry, toEntry, type AuditEntry, type HandoutEvent } from './record.js';
import { DEFAULT_MAX_ENTRIES, RepeatSummariser } from './repeats.js';
import { Lru } from '../util/lru.js';

export interface AuditLogOptions {
  file: string;
  /** Rotate when the file would grow beyond this many bytes. */
  maxSize: number;
  /** Old files kept besides the current one. */
  keep: number;
  now?: () => number;
  /** Called at most once a minute with what went wrong; never with a secret. */
  onError?: (err: Error) => void;
  /** Lines waiting for the disk before new ones are dropped (default 10,000). */
  maxQueue?: number;
  /** Entries of the repeat map (default 4096). */
  maxRepeatEntries?: number;
  /** How soon the writer tries again after an error (default 1 s). */
  retryMs?: number;
}

/** What the server codes against; NullAuditLog when audit_file = "off". */
export interface HandoutRecorder {
  /** `times` identical handouts (default 1), the last of them at e.time. */
  record(e: HandoutEvent, times?: number): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_MAX_QUEUE = 10_000;

interface Dropped {
  dropped: number;
  time: number;
}
const ERROR_INTERVAL_MS = 60_000;
const SWEEP_INTERVAL_MS = 60_000;

export class AuditLog implements HandoutRecorder {
  private readonly now: () => number;
  private readonly maxQueue: number;
  private readonly retryMs: number;
  private readonly repeats: RepeatSummariser;
  /** Lines, and markers standing where lines went missing (at most one marker in a row). */
  private queue: Array<string | Dropped> = [];
  /** Strings in the queue: the bound applies to these. */
  private lines = 0;
  private out: OpenAuditFile | undefined;
  private writing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private lastErrorAt = -Infinity;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  /** Checked forms of recent events, by their raw fields (bounded). */
  private readonly converted = new Lru<string, AuditEntry>(256);

  /** Throws (at start-up) when the file or its directory is unsafe: a symlink, readable by others, not ours. */
  constructor(private readonly o: AuditLogOptions) {
    if (!Number.isSafeInteger(o.maxSize) || o.maxSize < 1) throw new Error(`audit log: maxSize must be a positive whole number of bytes`);
    if (!Number.isSafeInteger(o.keep) || o.keep < 1) throw new Error(`audit log: keep must be at least 1`);
    this.now = o.now ?? Date.now;
    this.maxQueue = o.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.retryMs = o.retryMs ?? 1000;
    checkAuditFile(o.file);
    this.repeats = new RepeatSummariser((e) => this.enqueue(formatEntry(e)), o.maxRepeatEntries ?? DEFAULT_MAX_ENTRIES);
    this.sweepTimer = setInterval(() => this.guard(() => this.repeats.sweep(this.now())), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  record(e: HandoutEvent, times = 1): void {
    if (this.closed || !(Number.isSafeInteger(times) && times >= 1)) return;
    this.guard(() => {
      const now = this.now();
      // An SDK polling over one connection repeats the same handout thousands of times: its checked,
      // bounded form is built once and only the time is new.
      const raw = `${e.profile}\0${e.endpoint}\0${e.uid}\0${e.pid}\0${e.exe}\0${e.argv0}\0${e.accessKeyId}\0${e.expiration?.getTime?.()}`;
      let entry = this.converted.get(raw);
      if (entry === undefined) {
        entry = toEntry(e, now);
        this.converted.set(raw, entry);
      }
      const time = e.time instanceof Date && Number.isFinite(e.time.getTime()) ? e.time.toISOString() : new Date(now).toISOString();
      this.repeats.add({ ...entry, time }, now, times);
    });
  }

  /**
   * Resolves when the writer is idle: every line queued so far written, or,
   * when the disk fails, once the attempt has failed (the lines wait for the
   * retry, or are counted as dropped).
   */
  async flush(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return;
    if (this.retryTimer) {
      // A flush is a good moment to try again rather than wait for the timer
      // (a writer still finishing its failed run picks the queue up itself).
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    if (!this.writing) this.kick();
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Writes pending repeat summaries, then everything queued, and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.guard(() => this.repeats.flushAll(this.now()));
    this.closed = true;
    clearInterval(this.sweepTimer);
    await this.flush();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const out = this.out;
    this.out = undefined;
    await out?.handle.close().catch(() => undefined);
  }

  /** Anything unexpected costs a line (counted), never the caller. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.markDropped(1, 'end');
      this.report(err as Error);
    }
  }

  private enqueue(line: string): void {
    if (this.lines >= this.maxQueue) {
      this.markDropped(1, 'end');
      return;
    }
    this.queue.push(line);
    this.lines++;
    if (!this.writing && !this.retryTimer) this.kick();
  }

  /**
   * Counts missing lines where they went missing: lines dropped from a full
   * queue come after everything queued; a failed batch came before it.
   */
  private markDropped(n: number, where: 'start' | 'end'): void {
    const at = where === 'end' ? this.queue.length - 1 : 0;
    const m = this.queue[at];
    if (m !== undefined && typeof m !== 'string') {
      m.dropped += n;
    } else {
      const marker = { dropped: n, time: this.now() };
      if (where === 'end') this.queue.push(marker);
      else this.queue.unshift(marker);
    }
    if (!this.writing && !this.retryTimer && !this.closed) this.kick();
  }

  /** Starts the writer; callers check that none is running. */
  private kick(): void {
    const run: Promise<void> = this.drain().finally(() => {
      if (this.writing === run) this.writing = undefined;
      if (this.writing) return;
      if (this.queue.length > 0 && !this.retryTimer) {
        this.kick();
        return;
      }
      if (!this.retryTimer || this.closed) this.settle();
    });
    this.writing = run;
  }

  private settle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        await this.ensureOpen();
        const batch = this.queue.splice(0, 1000);
        const text = batch.map((l) =>
          typeof l === 'string' ? l : formatDropped({ time: new Date(l.time).toISOString(), dropped: l.dropped }),
        );
        this.lines -= batch.filter((l) => typeof l === 'string').length;
        const progress = { lines: 0 };
        try {
          await this.append(text, progress);
        } catch (err) {
          // The lines (and dropped notes) that did not reach the disk are counted as missing.
          const missing = batch.slice(progress.lines).reduce((n, l) => n + (typeof l === 'string' ? 1 : l.dropped), 0);
          if (missing > 0) this.markDropped(missing, 'start');
          throw err;
        }
      }
    } catch (err) {
      this.report(err as Error);
      const out = this.out;
      this.out = undefined;
      await out?.handle.close().catch(() => undefined);
      if (this.closed) {
        // Nobody will retry after close: what is left is lost.
        this.queue = [];
        this.lines = 0;
        return;
      }
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.writing) this.kick();
      }, this.retryMs);
      this.retryTimer.unref();
      this.settle();
    }
  }

  private async ensureOpen(): Promise<void> {
    if (this.out && !(await stillThere(this.o.file, this.out.ino))) {
      const old = this.out;
      this.out = undefined;
      await old.handle.close().catch(() => undefined);
    }
    this.out ??= await openAuditFile(this.o.file);
  }

  /** Appends lines, rotating first whenever the next line would take the file past maxSize. */
  /**
   * Counts into `progress.lines` each line once its newline is on disk, so a
   * failure part-way tells the caller which lines made it.
   */
  private async append(lines: string[], progress: { lines: number }): Promise<void> {
    let chunk: Buffer[] = [];
    let chunkBytes = 0;
    const writeChunk = async () => {
      if (chunk.length === 0) return;
      const out = this.out!;
      // The newline that ends a cut-off line is not one of ours.
      let uncounted = out.needsNewline ? 1 : 0;
      if (out.needsNewline) chunk.unshift(Buffer.from('\n'));
      const buf = Buffer.concat(chunk);
      chunk = [];
      chunkBytes = 0;
      // A full disk can take part of a write: loop for the rest; the next failure throws.
      for (let done = 0; done < buf.length; ) {
        const { bytesWritten } = await out.handle.write(buf, done, buf.length - done);
        if (bytesWritten <= 0) throw new Error('write made no progress');
        for (let i = done; i < done + bytesWritten; i++) {
          if (buf[i] !== 0x0a) continue;
          if (uncounted > 0) uncounted--;
          else progress.lines++;
        }
        done += bytesWritten;
        out.size += bytesWritten;
        out.needsNewline = buf[done - 1] !== 0x0a;
      }
    };
    for (const line of lines) {
      const b = Buffer.from(`${line}\n`, 'utf8');
      const size = this.out!.size + chunkBytes;
      if (size > 0 && size + b.length > this.o.maxSize) {
        await writeChunk();
        if (this.out!.size > 0) await this.rotate();
      }
      chunk.push(b);
      chunkBytes += b.length;
    }
    await writeChunk();
  }

  private async rotate(): Promise<void> {
    const old = this.out!;
    this.out = undefined;
    await old.handle.close();
    await rotateAuditFiles(this.o.file, this.o.keep);
    this.out = await openAuditFile(this.o.file);
  }

  private report(err: Error): void {
    const now = this.now();
    if (now - this.lastErrorAt < ERROR_INTERVAL_MS) return;
    this.lastErrorAt = now;
    try {
      this.o.onError?.(new Error(`audit log ${this.o.file}: ${err.message}`));
    } catch {
      // a failing reporter must not stop the writer
    }
  }
}

/** audit_file = "off": nothing is recorded. */
export class NullAuditLog implements HandoutRecorder {
  record(_e: HandoutEvent, _times?: number): void {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

export type { AuditEntry, HandoutEvent };
