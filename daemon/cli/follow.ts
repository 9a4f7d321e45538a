/**
 * Following a set of rotated files (`tail -F` for logs whose writer renames or
 * replaces files). Files are tracked by inode, not by name: after a rotation
 * the rest of the file we were reading is read under its new name, then the
 * newer files from their start, so no line is lost or printed twice whatever
 * the naming scheme (audit.log → audit.log.1, or the daemon log's NAME.N.log).
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';

/** Where reading stopped: a file (by inode) and a byte offset in it. */
export interface FollowPosition {
  ino: number;
  offset: number;
}

export interface FollowOptions {
  /** The files that exist now, oldest first; the last one is being written. */
  list: () => string[];
  /** Where the initial read stopped (undefined: no file yet; start with the first that appears). */
  from: FollowPosition | undefined;
  onLine: (line: string) => void;
  /** Polling interval; at least 250 ms. */
  intervalMs?: number;
  /** Stops following (default: SIGINT or SIGTERM). */
  signal?: AbortSignal;
}

/** At most this much is read from one file per tick, whatever its size claims. */
const MAX_READ = 4 * 1024 * 1024;

/** Reads a whole file and says where that read stopped, for the initial print before following. */
export function readWhole(path: string): { text: string; position: FollowPosition } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined; // rotated away between listing and reading
  }
  try {
    const st = fstatSync(fd);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    // A partial last line is left for the follower to finish.
    const end = buf.subarray(0, got).lastIndexOf(0x0a) + 1;
    return { text: buf.subarray(0, end).toString('utf8'), position: { ino: st.ino, offset: end } };
  } finally {
    closeSync(fd);
  }
}

/** Follows until the signal (or SIGINT/SIGTERM); resolves then. */
export async function followFiles(o: FollowOptions): Promise<void> {
  let pos = o.from;
  let partial = '';
  const emit = (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) o.onLine(p);
  };
  /** Reads `path` from `offset`; false when the file is not the inode expected. */
  const readFrom = (path: string, ino: number | undefined, offset: number): { ino: number; offset: number; more: boolean } | undefined => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return undefined;
    }
    try {
      const st = fstatSync(fd);
      if (ino !== undefined && st.ino !== ino) return undefined;
      const start = st.size < offset ? 0 : offset; // truncated: start over
      const len = Math.min(st.size - start, MAX_READ);
      if (len <= 0) return { ino: st.ino, offset: start, more: false };
      const buf = Buffer.alloc(len);
      const n = readSync(fd, buf, 0, len, start);
      emit(buf.subarray(0, n).toString('utf8'));
      return { ino: st.ino, offset: start + n, more: start + n < st.size };
    } finally {
      closeSync(fd);
    }
  };
  const tick = () => {
    const files = o.list().flatMap((path) => {
      try {
        return [{ path, ino: statSync(path).ino }];
      } catch {
        return [];
      }
    });
    if (files.length === 0) return;
    let i = pos ? files.findIndex((f) => f.ino === pos!.ino) : -1;
    if (i < 0) {
      // Our file is gone (deleted past the kept count) or there was none: take up the newest from its start.
      i = files.length - 1;
      pos = { ino: files[i]!.ino, offset: 0 };
      partial = '';
    }
    for (; i < files.length; i++) {
      const f = files[i]!;
      const r = readFrom(f.path, f.ino, f.ino === pos!.ino ? pos!.offset : 0);
      if (!r) return; // replaced between listing and opening: the next tick sees it
      pos = { ino: r.ino, offset: r.offset };
      if (r.more) return; // the rest next tick
      if (i < files.length - 1 && partial) {
        // A rotated file ends where its writer stopped: whatever is left is a whole (if broken) line.
        o.onLine(partial);
        partial = '';
      }
    }
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(
      () => {
        try {
          tick();
        } catch {
          // A file vanishing between the steps of a tick: the next tick sees the new state.
        }
      },
      Math.max(250, o.intervalMs ?? 250),
    );
    const stop = () => {
      clearInterval(timer);
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      resolve();
    };
    if (o.signal) {
      if (o.signal.aborted) stop();
      else o.signal.addEventListener('abort', stop, { once: true });
    } else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
  });
}
