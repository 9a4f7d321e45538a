// ProcessFinder over a /proc-shaped directory of real files and symlinks (pid directories, fd links
// named socket:[inode], cmdline, exe): which process holds a socket, and how many descriptors it read to
// say so. A client's next connection is usually a descriptor the last pass did not see, or the one after
// the descriptor the last answer was on: those are read first, and a pass stops once nobody is waiting.

import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ProcessFinder } from '../daemon/peer/process-finder.js';

const uid = process.getuid?.() ?? 0;

function fakeProc(): {
  root: string;
  addProcess(pid: number, exe: string, fds: Record<number, string>): void;
  link(pid: number, fd: number, target: string): void;
} {
  const root = mkdtempSync(join(tmpdir(), 'credport-proc-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const link = (pid: number, fd: number, target: string) => {
    const path = join(root, String(pid), 'fd', String(fd));
    try {
      unlinkSync(path);
    } catch {
      // a new descriptor
    }
    symlinkSync(target, path);
  };
  return {
    root,
    link,
    addProcess(pid, exe, fds) {
      mkdirSync(join(root, String(pid), 'fd'), { recursive: true });
      symlinkSync(exe, join(root, String(pid), 'exe'));
      writeFileSync(join(root, String(pid), 'cmdline'), `${exe}\0--flag\0`);
      for (const [fd, target] of Object.entries(fds)) link(pid, Number(fd), target);
    },
  };
}

const sockets = (from: number, count: number, firstInode: number): Record<number, string> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [from + i, `socket:[${firstInode + i}]`]));

t.test('names the process holding a socket, reading new descriptors first', async (tt) => {
  const proc = fakeProc();
  proc.addProcess(4242, '/usr/bin/client', { 0: '/dev/null', 1: 'pipe:[7]', 2: 'pipe:[8]', ...sockets(3, 40, 1000) });
  const finder = new ProcessFinder({ procRoot: proc.root });
  // A pass counts what it read when it ends, which is just after it answers: read the count once it has.
  const read = async () => {
    await new Promise((r) => setImmediate(r));
    return finder.stats.descriptorsRead;
  };

  const first = await finder.find(1010, uid);
  tt.same(first, { pid: 4242, exe: '/usr/bin/client', argv0: '/usr/bin/client' }, 'found by a full pass');
  const firstPass = await read();
  tt.ok(firstPass < 43, `stopped once answered (${firstPass} of 43 descriptors read)`);

  // A new connection on a new descriptor: read right after the two guesses (the descriptors after the
  // last answer), before the 43 the last pass saw.
  proc.link(4242, 43, 'socket:[2000]');
  let before = await read();
  tt.equal((await finder.find(2000, uid))?.pid, 4242, 'a new descriptor is found');
  tt.equal((await read()) - before, 3, 'and read first after the two guesses');

  // The descriptor after the one the last answer was on is tried before the table is even listed.
  proc.link(4242, 44, 'socket:[2001]');
  before = await read();
  const tables = finder.stats.tablesListed;
  tt.equal((await finder.find(2001, uid))?.pid, 4242);
  tt.equal((await read()) - before, 1, 'the next descriptor is read first');
  tt.equal(finder.stats.tablesListed, tables, 'without listing the table');
  // A client reusing freed numbers in order: the descriptor after the last answer again.
  proc.link(4242, 3, 'socket:[2500]');
  proc.link(4242, 4, 'socket:[2501]');
  tt.equal((await finder.find(2500, uid))?.pid, 4242, 'a reused descriptor number is found');
  before = await read();
  tt.equal((await finder.find(2501, uid))?.pid, 4242);
  tt.equal((await read()) - before, 1, 'and the one after it is read first');

  // A reused low descriptor number is still found: only the order changed, every descriptor is read if need be.
  proc.link(4242, 5, 'socket:[3000]');
  tt.equal((await finder.find(3000, uid))?.pid, 4242, 'a socket on a reused descriptor number is found');

  // An inode nobody holds is unknown after reading everything there is.
  before = await read();
  tt.equal(await finder.find(999_999, uid), undefined, 'a socket nobody holds is unknown');
  tt.ok((await read()) - before >= 45, 'after every descriptor was read');
});

t.test('looks only at processes of the uid asked about', { skip: uid !== 0 ? 'needs root to chown' : false }, async (tt) => {
  const proc = fakeProc();
  proc.addProcess(5000, '/usr/bin/other', sockets(3, 3, 7000));
  chownSync(join(proc.root, '5000'), 54321, 54321);
  proc.addProcess(5001, '/usr/bin/mine', sockets(3, 3, 8000));
  const finder = new ProcessFinder({ procRoot: proc.root });
  tt.equal(await finder.find(7001, uid), undefined, "another uid's process is not read");
  tt.equal((await finder.find(8001, uid))?.exe, '/usr/bin/mine');
  tt.equal((await finder.find(7002, 54321))?.exe, '/usr/bin/other', 'asked for its uid, it is');
});

t.test('several waiting at once are answered by one pass', async (tt) => {
  const proc = fakeProc();
  proc.addProcess(6000, '/usr/bin/burst', sockets(3, 64, 9000));
  const finder = new ProcessFinder({ procRoot: proc.root });
  const found = await Promise.all(Array.from({ length: 64 }, (_, i) => finder.find(9000 + i, uid)));
  tt.ok(
    found.every((p) => p?.pid === 6000),
    'all 64 named',
  );
  await new Promise((r) => setImmediate(r));
  tt.equal(finder.stats.scans, 1, 'in one pass');
  tt.equal(finder.stats.descriptorsRead, 64, 'reading each descriptor once');
});
