/**
 * The slim path's direct writer (cli/io.ts) on a real FIFO: a non-blocking descriptor that fills up
 * (EAGAIN) hands the rest and every later write to the stream, in order; a reader that went away
 * (EPIPE) ends the output without an error.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { directWriter } from '../daemon/cli/io.js';

function fifo(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'credport-fifo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'out');
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo: ${r.stderr}`);
  return path;
}

function drain(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65_536);
  for (let i = 0; i < 1_000; i++) {
    let n = 0;
    try {
      n = readSync(fd, buf);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

t.test('a full non-blocking pipe: the rest, and what follows, go to the stream in order', async (t) => {
  const path = fifo(t);
  const rd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const wr = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  t.teardown(() => {
    closeSync(rd);
    closeSync(wr);
  });
  const streamed: Buffer[] = [];
  let fallbacks = 0;
  const write = directWriter(wr, () => {
    fallbacks++;
    return { write: (c) => streamed.push(Buffer.from(c)) };
  });
  const first = 'a'.repeat(300_000); // more than any pipe buffer holds
  write(first);
  write('second\n');
  write('third\n');
  t.equal(fallbacks, 1, 'the stream was asked for once');
  const inPipe = drain(rd);
  t.ok(inPipe.length > 0 && inPipe.length < first.length, `the pipe took part of it (${inPipe.length} bytes)`);
  t.equal(Buffer.concat([inPipe, ...streamed]).toString(), `${first}second\nthird\n`, 'nothing lost, nothing reordered');
});

t.test('a reader that went away: the output ends quietly', async (t) => {
  const path = fifo(t);
  const rd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const wr = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  t.teardown(() => closeSync(wr));
  closeSync(rd);
  let fallbacks = 0;
  const write = directWriter(wr, () => {
    fallbacks++;
    return { write: () => true };
  });
  t.doesNotThrow(() => write('export A=1\n'), 'EPIPE is not an error');
  t.doesNotThrow(() => write('export B=2\n'), 'nor the next time');
  t.equal(fallbacks, 0, 'no stream is built for a reader that is gone');
});

t.test('other errors are not swallowed', async (t) => {
  const write = directWriter(987_654, () => ({ write: () => true }));
  t.throws(() => write('x'), { code: 'EBADF' });
});
