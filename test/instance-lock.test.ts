/**
 * The instance lock in-process: what it records, how it tells a live daemon
 * from a pid that now belongs to someone else, and that no file in its place
 * (a FIFO) can hang a starter.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { acquireInstanceLock, AlreadyRunningError, lockOwner } from '../daemon/service/instance-lock.js';
import { identify } from '../daemon/service/process-identity.js';
import { tempDir } from './helpers/temp-dir.js';

const lockDir = (t: Test) => tempDir(t, 'credport-lock-');

t.test('the lock records pid, start time, executable and instance; 0600; no temp file left', async (t) => {
  const dir = lockDir(t);
  const path = join(dir, 'daemon.pid');
  const lock = acquireInstanceLock(path);
  const rec = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  t.equal(rec.pid, process.pid);
  t.match(rec.instance, /^[0-9a-f]{32}$/);
  if (process.platform === 'linux') {
    t.match(rec.start, /^.+:\d+$/, 'boot id and start ticks');
    t.equal(rec.exe, identify(process.pid).exe);
  }
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.same(readdirSync(dir), ['daemon.pid'], 'only the lock itself');
  lock.release();
  t.same(readdirSync(dir), [], 'released');
});

t.test(
  'a live process is told apart from a reused pid by its start time',
  { skip: process.platform !== 'linux' && process.platform !== 'darwin' },
  async (t) => {
    const dir = lockDir(t);
    const path = join(dir, 'daemon.pid');
    const other = spawn('sleep', ['300'], { stdio: 'ignore' });
    t.teardown(() => other.kill('SIGKILL'));
    const pid = other.pid ?? 0;
    const who = identify(pid);
    writeFileSync(path, JSON.stringify({ ...who, instance: 'a' }), { mode: 0o600 });
    const live = lockOwner(path);
    t.equal(live.state, 'running');
    t.equal(live.state === 'running' && live.proven, true, 'proven by its start time');
    t.throws(() => acquireInstanceLock(path), AlreadyRunningError, 'a proven live owner keeps the lock');
    writeFileSync(path, JSON.stringify({ ...who, start: `${who.start ?? ''}0`, instance: 'b' }), { mode: 0o600 });
    t.equal(lockOwner(path).state, 'stale', 'same pid, other start time: stale');
    const lock = acquireInstanceLock(path);
    t.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid, 'taken over');
    t.equal(other.exitCode, null, 'the other process was left alone');
    lock.release();
  },
);

t.test("a FIFO in the lock file's place is an error, not a hang", { skip: process.platform === 'win32' }, async (t) => {
  const dir = lockDir(t);
  const path = join(dir, 'daemon.pid');
  t.equal(spawnSync('mkfifo', ['-m', '600', path]).status, 0);
  t.throws(() => acquireInstanceLock(path), /could not take the lock/);
  t.equal(lockOwner(path).state, 'none');
});
