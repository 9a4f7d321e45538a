/**
 * The audit log on a real file system: who may read it, what a line holds,
 * rotation, the bounded queue, repeat summaries, and recovery when the
 * directory disappears under it.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { auditFiles } from '../daemon/audit/audit-file.js';
import { AuditLog, NullAuditLog, type AuditLogOptions } from '../daemon/audit/audit-log.js';
import { auditLogFromConfig } from '../daemon/audit/from-config.js';
import type { HandoutEvent } from '../daemon/audit/record.js';
import { handoutEvent } from './helpers/handout-event.js';
import { parseSize } from '../daemon/audit/size.js';
import { resolveConfig } from '../daemon/config/load.js';

const T0 = Date.UTC(2026, 10, 28, 2, 0, 0);
const FIELDS = ['time', 'profile', 'endpoint', 'accessKeyId', 'expiration', 'uid', 'pid', 'exe', 'argv0'];

const made: string[] = [];
t.teardown(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'credport-audit-'));
  made.push(d);
  return d;
}

const event = (over: Partial<HandoutEvent> = {}): HandoutEvent => handoutEvent(T0, over);

function lines(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A log whose clock the test holds. */
function open(file: string, over: Partial<AuditLogOptions> = {}) {
  const clock = { t: T0 };
  const errors: Error[] = [];
  const log = new AuditLog({ file, maxSize: 1024 * 1024, keep: 3, now: () => clock.t, onError: (e) => errors.push(e), ...over });
  return { log, clock, errors };
}

/** Bounded wait for a condition the writer's retry timer brings about. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not reached: ${what}`);
}

t.test('a new file is 0600 in a 0700 directory and holds exactly the named fields', async (t) => {
  const d = join(dir(), 'state', 'credport');
  const file = join(d, 'audit.log');
  const { log } = open(file);
  t.equal(statSync(d).mode & 0o777, 0o700, 'directory created 0700');
  t.equal(statSync(file).mode & 0o777, 0o600, 'file created 0600 at construction');
  log.record(event());
  await log.close();
  const [l, ...rest] = lines(file);
  t.equal(rest.length, 0, 'one line');
  t.same(Object.keys(l!), FIELDS, 'field names and order');
  t.same(l, {
    time: new Date(T0).toISOString(),
    profile: 'dev',
    endpoint: 'ecs',
    accessKeyId: 'ASIAFAKE00000001',
    expiration: new Date(T0 + 3_600_000).toISOString(),
    uid: 1000,
    pid: 4242,
    exe: '/usr/bin/curl',
    argv0: 'curl',
  });
});

t.test('odd characters are escaped, secrets have nowhere to go, bad fields are stored safely', async (t) => {
  const file = join(dir(), 'audit.log');
  const { log } = open(file);
  const exe = '/tmp/evil "name"\n{"accessKeyId":"x"}\u001b[2J\u009b\u2028\u0000\\';
  const argv0 = 'a\rb\u007f\ud800';
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  const token = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN';
  // A careless caller passing the whole credentials object along with the event.
  log.record({ ...event({ exe, argv0, pid: 1 }), secretAccessKey: secret, sessionToken: token, Token: token } as unknown as HandoutEvent);
  log.record(event({ accessKeyId: secret, pid: 2 }));
  log.record(event({ accessKeyId: 'asiafake00000001', pid: 3 }));
  log.record({ ...event({ pid: 4 }), time: new Date(Number.NaN), expiration: 'soon' as unknown as Date, uid: Number.NaN, pid: 1.5 });
  log.record(null as unknown as HandoutEvent); // must not throw either
  log.record(event({ exe: 'x'.repeat(100_000), pid: 5 }));
  await log.close();
  const raw = readFileSync(file, 'utf8');
  t.notOk(raw.includes(secret), 'no secret key');
  t.notOk(raw.includes(token), 'no session token');
  t.notMatch(raw, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/, 'no raw control characters in the file');
  const ls = lines(file);
  t.ok(ls.length >= 5, 'each record is one line (a newline in a name does not split it)');
  t.equal(ls[0]!.exe, exe, 'exe round-trips through the escaping');
  t.equal(ls[0]!.argv0, 'a\rb\u007f\ud800', 'argv0 round-trips, a lone surrogate included');
  for (const l of ls)
    t.ok(
      Object.keys(l).every((k) => FIELDS.includes(k) || k === 'dropped'),
      'only the named fields',
    );
  t.equal(ls[1]!.accessKeyId, 'invalid', 'a secret in the accessKeyId field is not stored');
  t.equal(ls[2]!.accessKeyId, 'invalid', 'lower case is not an access key id');
  t.same([ls[3]!.time, ls[3]!.expiration, ls[3]!.uid, ls[3]!.pid], [new Date(T0).toISOString(), null, -1, null], 'bad dates and numbers');
  const dropped = ls.find((l) => 'dropped' in l);
  t.equal(dropped?.dropped, 1, 'the record that could not be turned into a line is counted');
  const long = ls.find((l) => typeof l.exe === 'string' && l.exe.startsWith('xxx'));
  t.ok(long && (long.exe as string).length < 2000, 'a long exe is cut');
});

t.test('an existing file that is not private, a symlink or not ours is refused at construction', async (t) => {
  const d = dir();
  const loose = join(d, 'loose.log');
  writeFileSync(loose, '', { mode: 0o644 });
  chmodSync(loose, 0o644);
  t.throws(() => open(loose), /loose\.log is readable by others \(mode 0644\); run: chmod 600/);
  t.equal(readFileSync(loose, 'utf8'), '', 'nothing written');
  const target = join(d, 'target.log');
  writeFileSync(target, '', { mode: 0o600 });
  const link = join(d, 'link.log');
  symlinkSync(target, link);
  t.throws(() => open(link), /link\.log is a symbolic link/);
  const open777 = join(d, 'shared');
  mkdirSync(open777);
  chmodSync(open777, 0o777);
  t.throws(() => open(join(open777, 'audit.log')), /writable by others \(mode 0777\)/);
  t.notOk(existsSync(join(open777, 'audit.log')), 'no file made in an unsafe directory');
  t.throws(() => open(join(d, 'x.log'), { keep: 0 }), /keep/);
  if (process.getuid?.() === 0) {
    const theirs = join(d, 'theirs.log');
    writeFileSync(theirs, '', { mode: 0o600 });
    chownSync(theirs, 65534, 65534);
    t.throws(() => open(theirs), /belongs to uid 65534/);
    const theirDir = join(d, 'their-dir');
    mkdirSync(theirDir, { mode: 0o755 });
    chownSync(theirDir, 65534, 65534);
    t.throws(() => open(join(theirDir, 'audit.log')), /their-dir belongs to uid 65534/);
  }
});

t.test('rotation keeps the configured number of files, each within the size, newest last', async (t) => {
  const d = dir();
  const file = join(d, 'audit.log');
  const { log } = open(file, { maxSize: 1000, keep: 2 });
  for (let i = 0; i < 40; i++) log.record(event({ pid: 1000 + i }));
  await log.flush();
  for (let i = 40; i < 60; i++) log.record(event({ pid: 1000 + i }));
  await log.close();
  t.same(readdirSync(d).sort(), ['audit.log', 'audit.log.1', 'audit.log.2'], 'current plus two old files, no more');
  const files = auditFiles(file);
  t.same(files, [`${file}.2`, `${file}.1`, file], 'listed oldest first');
  const pids: number[] = [];
  for (const f of files) {
    t.ok(statSync(f).size <= 1000, `${f} within max size`);
    t.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`);
    pids.push(...lines(f).map((l) => l.pid as number));
  }
  t.equal(pids.at(-1), 1059, 'the newest record is in the current file');
  t.same(
    pids,
    pids.map((_, i) => pids[0]! + i),
    'consecutive: nothing lost or reordered within the kept files',
  );
  t.ok(pids.length < 60, 'the oldest were rotated away');
});

t.test('a full queue drops lines, counts them, and says so once writing goes on', async (t) => {
  const file = join(dir(), 'audit.log');
  const { log } = open(file, { maxQueue: 5 });
  for (let i = 0; i < 20; i++) log.record(event({ pid: i }));
  await log.flush();
  log.record(event({ pid: 100 }));
  await log.close();
  const ls = lines(file);
  t.same(
    ls.slice(0, 5).map((l) => l.pid),
    [0, 1, 2, 3, 4],
    'the first five were queued and written',
  );
  t.same(ls[5], { time: new Date(T0).toISOString(), dropped: 15 }, 'then one line saying fifteen are missing');
  t.equal(ls[6]!.pid, 100, 'and writing goes on');
  t.equal(ls.length, 7);
});

t.test('repeats: the first handout at once, the same ones after it as one summary', async (t) => {
  const file = join(dir(), 'audit.log');
  const { log, clock } = open(file);
  for (let i = 0; i < 10; i++) log.record(event({ time: new Date(T0 + i * 1000) }));
  await log.flush();
  t.equal(lines(file).length, 1, 'only the first is written while polling goes on');
  await log.close();
  const ls = lines(file);
  t.equal(ls.length, 2, 'one handout line and one summary');
  t.notOk('repeats' in ls[0]!, 'the first is a plain handout');
  t.same(
    { repeats: ls[1]!.repeats, time: ls[1]!.time, lastTime: ls[1]!.lastTime, pid: ls[1]!.pid, accessKeyId: ls[1]!.accessKeyId },
    {
      repeats: 9,
      time: new Date(T0 + 1000).toISOString(),
      lastTime: new Date(T0 + 9000).toISOString(),
      pid: 4242,
      accessKeyId: 'ASIAFAKE00000001',
    },
  );
  t.same(Object.keys(ls[1]!), [...FIELDS, 'repeats', 'lastTime']);
  t.equal(clock.t, T0);
});

t.test('repeats: new credentials, another process, the hourly summary and eviction', async (t) => {
  const file = join(dir(), 'audit.log');
  const { log, clock } = open(file, { maxRepeatEntries: 2 });
  log.record(event());
  log.record(event());
  log.record(event({ pid: 7 })); // another process: its own first line
  log.record(event({ accessKeyId: 'ASIAFAKE00000002' })); // new credentials: summary of the old, then the new
  await log.flush();
  let ls = lines(file);
  t.same(
    ls.map((l) => [l.pid, l.accessKeyId, l.repeats]),
    [
      [4242, 'ASIAFAKE00000001', undefined],
      [7, 'ASIAFAKE00000001', undefined],
      [4242, 'ASIAFAKE00000001', 1],
      [4242, 'ASIAFAKE00000002', undefined],
    ],
  );
  log.record(event({ accessKeyId: 'ASIAFAKE00000002' }));
  clock.t += 60 * 60 * 1000;
  log.record(event({ accessKeyId: 'ASIAFAKE00000002' }));
  await log.flush();
  ls = lines(file);
  t.same([ls.length, ls[4]!.repeats], [5, 2], 'an hour later the ongoing repeats are summarised');
  log.record(event({ pid: 20 })); // room for two: evicts 7 (least recent, nothing pending)
  log.record(event({ pid: 20 })); // a repeat, pending
  log.record(event({ pid: 21 })); // evicts 4242, nothing pending
  log.record(event({ pid: 22 })); // evicts 20, which has a repeat pending
  await log.flush();
  ls = lines(file);
  t.same(
    ls.slice(5).map((l) => [l.pid, l.repeats]),
    [
      [20, undefined],
      [21, undefined],
      [20, 1],
      [22, undefined],
    ],
    'an evicted entry with repeats writes its summary',
  );
  await log.close();
  t.equal(lines(file).length, 9, 'nothing pending at close');
});

t.test('a removed directory is re-created; a file in its place is reported once and outlasted', async (t) => {
  const root = dir();
  const d = join(root, 'credport');
  const file = join(d, 'audit.log');
  const { log, errors } = open(file, { retryMs: 50 });
  log.record(event({ pid: 1 }));
  await log.flush();

  rmSync(d, { recursive: true });
  log.record(event({ pid: 2 }));
  await log.flush();
  t.same(
    lines(file).map((l) => l.pid),
    [2],
    'file and directory re-created, the record written there',
  );
  t.equal(statSync(d).mode & 0o777, 0o700);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(errors, [], 'a removed directory is not even an error');

  rmSync(d, { recursive: true });
  writeFileSync(d, 'not a directory');
  log.record(event({ pid: 3 }));
  await log.flush();
  log.record(event({ pid: 4 }));
  await log.flush();
  t.equal(errors.length, 1, 'one report, not one per attempt');
  t.match(errors[0]!.message, /^audit log .*audit\.log: /);
  t.ok(lstatSync(d).isFile(), 'nothing done to the file in the way');

  rmSync(d);
  await until(() => existsSync(file) && lines(file).length === 2, 'the retry writes the waiting records');
  t.same(
    lines(file).map((l) => l.pid),
    [3, 4],
    'records kept while the directory was blocked are written after',
  );
  log.record(event({ pid: 5 }));
  await log.close();
  t.same(
    lines(file).map((l) => l.pid),
    [3, 4, 5],
  );
  t.equal(errors.length, 1);
});

t.test('a file replaced by a symlink while running is not written through', async (t) => {
  const d = dir();
  const file = join(d, 'audit.log');
  const elsewhere = join(d, 'elsewhere');
  writeFileSync(elsewhere, '', { mode: 0o600 });
  const { log, errors } = open(file, { retryMs: 50 });
  log.record(event({ pid: 1 }));
  await log.flush();
  rmSync(file);
  symlinkSync(elsewhere, file);
  log.record(event({ pid: 2 }));
  await log.flush();
  t.equal(readFileSync(elsewhere, 'utf8'), '', 'nothing written through the link');
  t.match(errors[0]?.message, /symbolic link/);
  rmSync(file);
  await until(() => existsSync(file) && lines(file).length === 1, 'written once the link is gone');
  await log.close();
  t.same(
    lines(file).map((l) => l.pid),
    [2],
  );
});

t.test('after close nothing is recorded; close twice is fine; the null log does nothing', async (t) => {
  const file = join(dir(), 'audit.log');
  const { log } = open(file);
  log.record(event());
  await log.close();
  log.record(event({ pid: 9 }));
  await log.close();
  await log.flush();
  t.equal(lines(file).length, 1);
  const n = new NullAuditLog();
  n.record(event());
  await n.flush();
  await n.close();
  t.pass('null log accepted everything');
});

t.test('from config: sizes, "off", and the default path', async (t) => {
  t.equal(parseSize('512k'), 512 * 1024);
  t.equal(parseSize('10m'), 10 * 1024 * 1024);
  t.throws(() => parseSize('10'), /expected a size/);
  const home = dir();
  const env = { HOME: home };
  const base = {
    profiles: { dev: { type: 'aws-oidc', role_arn: 'arn:aws:iam::111122223333:role/dev', region: 'us-east-1' } },
    oidc: { issuer: 'https://issuer.example' },
  };
  const cfg = resolveConfig(join(home, 'config.toml'), base, env);
  t.equal(cfg.daemon.auditFile, join(home, '.local', 'state', 'credport', 'audit.log'), 'default path');
  t.same([cfg.daemon.audit_max_size, cfg.daemon.audit_files], ['10m', 5]);
  const off = resolveConfig(join(home, 'config.toml'), { ...base, daemon: { audit_file: 'off' } }, env);
  t.equal(off.daemon.auditFile, undefined, '"off" disables it');
  t.type(auditLogFromConfig(off.daemon), NullAuditLog);
  const rel = resolveConfig(
    join(home, 'config.toml'),
    { ...base, daemon: { audit_file: 'a/audit.log', audit_max_size: '1k', audit_files: 2 } },
    env,
  );
  t.equal(rel.daemon.auditFile, join(home, 'a', 'audit.log'), 'relative to the config file');
  const log = auditLogFromConfig(rel.daemon);
  t.type(log, AuditLog);
  await log.close();
  t.ok(existsSync(join(home, 'a', 'audit.log')));
  t.throws(() => resolveConfig(join(home, 'config.toml'), { ...base, daemon: { audit_max_size: '10' } }, env), /audit_max_size/);
});

// Needs root for a private tmpfs; CI runs as root.
const asRoot = process.getuid?.() === 0;
t.test(
  'a full disk: one report, the records counted, writing resumes when space returns',
  { skip: asRoot ? false : 'needs root (a private tmpfs)' },
  async (t) => {
    const d = dir();
    const probe = fileURLToPath(new URL('./helpers/audit-enospc-probe.js', import.meta.url));
    // A 64 KiB tmpfs in a private mount namespace: the disk fills for real, and nothing outside sees it.
    const r = spawnSync(
      'unshare',
      ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k,mode=0700 tmpfs "$0" && exec "$1" "$2" "$0"', d, process.execPath, probe],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    t.equal(r.status, 0, r.stderr);
    const { errors, content } = JSON.parse(r.stdout) as { errors: string[]; content: string };
    t.equal(errors.length, 1, 'one report while the disk stayed full');
    t.match(errors[0], /ENOSPC|no space/i);
    const raw = content.split('\n').filter((l) => l !== '');
    const ls = raw.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    t.ok(raw.length - ls.length <= 1, 'at most one line broken by the cut-short write, none fused');
    t.equal(ls[0]?.pid, 1000, 'the line from before the disk filled');
    const written = ls.filter((l) => typeof l.pid === 'number' && (l.pid as number) < 50).length;
    const dropped = ls.reduce((n, l) => n + ((l.dropped as number | undefined) ?? 0), 0);
    t.ok(dropped > 0, 'a dropped note was written');
    t.equal(written + dropped, 50, 'every record is either written or counted');
    t.equal(ls.at(-1)?.pid, 999, 'writing resumed');
  },
);
