/**
 * Repeat summarising: an SDK polling in a loop must not fill the disk.
 *
 * A handout is "the same" as an earlier one when the same process (uid, pid,
 * exe) got the same credentials (accessKeyId) of the same profile from the same
 * endpoint. The first is written at once; the same ones after it are only
 * counted, and written as one summary line (`repeats`: how many, `time` of the
 * first and `lastTime` of the last of them) when the credentials change, when
 * the entry is evicted from the bounded map, once an hour at most while the
 * polling goes on, and at close. A pid that could not be found is part of the
 * key as null, so unidentified processes of one uid share an entry.
 */
import { Lru } from '../util/lru.js';
import type { AuditEntry } from './record.js';

export const SUMMARY_INTERVAL_MS = 60 * 60 * 1000;
export const DEFAULT_MAX_ENTRIES = 4096;

interface Seen {
  /** The last line written for this key (the handout or its previous summary). */
  entry: AuditEntry;
  /** Identical handouts since that line. */
  repeats: number;
  firstRepeat: string;
  lastRepeat: string;
  /** When the window for the next hourly summary opened (ms). */
  windowStart: number;
}

function keyOf(e: AuditEntry): string {
  return `${e.profile}\0${e.endpoint}\0${e.uid}\0${e.pid}\0${e.exe}`;
}

function summaryOf(s: Seen): AuditEntry {
  return { ...s.entry, time: s.firstRepeat, repeats: s.repeats, lastTime: s.lastRepeat };
}

export class RepeatSummariser {
  private readonly seen: Lru<string, Seen>;

  /** `emit` receives every line to write, handouts and summaries, in order. */
  constructor(
    private readonly emit: (e: AuditEntry) => void,
    maxEntries = DEFAULT_MAX_ENTRIES,
  ) {
    // Only an eviction loses an entry with counts; replacement and close are handled where they happen.
    this.seen = new Lru<string, Seen>(maxEntries, (s) => {
      if (s.repeats > 0) this.emit(summaryOf(s));
    });
  }

  /** `times` identical handouts, the last at e.time (the server batches repeats on one connection). */
  add(e: AuditEntry, now: number, times = 1): void {
    const key = keyOf(e);
    const s = this.seen.get(key);
    if (s && s.entry.accessKeyId === e.accessKeyId && s.entry.expiration === e.expiration) {
      if (s.repeats === 0) s.firstRepeat = e.time;
      s.repeats += times;
      s.lastRepeat = e.time;
      if (now - s.windowStart >= SUMMARY_INTERVAL_MS) this.writeSummary(s, now);
      return;
    }
    if (s && s.repeats > 0) this.emit(summaryOf(s));
    // Set first: a summary of the entry this evicts belongs before the new line.
    this.seen.set(key, { entry: e, repeats: times - 1, firstRepeat: e.time, lastRepeat: e.time, windowStart: now });
    this.emit(e);
  }

  /** Writes the summaries whose hour has passed (called on a timer, so a loop that stops is still summarised). */
  sweep(now: number): void {
    for (const s of this.seen.values()) {
      if (s.repeats > 0 && now - s.windowStart >= SUMMARY_INTERVAL_MS) this.writeSummary(s, now);
    }
  }

  /** Writes every pending summary (at close). */
  flushAll(now: number): void {
    for (const s of this.seen.values()) if (s.repeats > 0) this.writeSummary(s, now);
  }

  private writeSummary(s: Seen, now: number): void {
    this.emit(summaryOf(s));
    s.repeats = 0;
    s.windowStart = now;
  }
}
