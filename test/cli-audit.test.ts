/**
 * `credport audit` as a real process over files the real writer made: the
 * table, --json field names, the filters, malformed lines, the "off" and
 * "missing" cases, and -f across a rotation.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { auditFiles } from '../daemon/audit/audit-file.js';
import { AuditLog } from '../daemon/audit/audit-log.js';
import type { HandoutEvent } from '../daemon/audit/record.js';
import { handoutEvent } from './helpers/handout-event.js';
import { runCli, spawnCli } from './helpers/cli.js';

const FIELDS = ['time', 'profile', 'endpoint', 'accessKeyId', 'expiration', 'uid', 'pid', 'exe', 'argv0'];

function setup(daemon = 'audit_file = "state/audit.log"\naudit_max_size = "1k"\naudit_files = 3') {
  const home = mkdtempSync(join(tmpdir(), 'credport-cli-audit-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const config = join(home, 'config.toml');
  writeFileSync(
    config,
    `[daemon]\n${daemon}\n\n[oidc]\nissuer = "https://issuer.example"\n\n[profiles.dev]\ntype = "aws-oidc"\nrole_arn = "arn:aws:iam::111122223333:role/dev"\nregion = "us-east-1"\n`,
    { mode: 0o600 },
  );
  return { home, config, file: join(home, 'state', 'audit.log'), env: { HOME: home } };
}

/** One fixed moment, so that repeated records are identical (the same credentials have one expiration). */
const NOW = Date.now();

const event = (over: Partial<HandoutEvent> = {}): HandoutEvent =>
  handoutEvent(NOW, { endpoint: 'imds', exe: '/usr/bin/python3', argv0: 'python3', ...over });

const parse = (out: string) =>
  out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('help, usage errors, "off", and no file yet', async (t) => {
  const { config, env } = setup();
  const top = runCli(['--help'], env);
  t.match(top.stdout, /\n {2}audit +show which process got which credentials/);
  const help = runCli(['audit', '--help'], env);
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: credport audit/);
  for (const bad of ['5', '1w', '-1h', '0s', 'h']) {
    const r = runCli(['audit', '-c', config, `--since=${bad}`], env);
    t.equal(r.status, 2, `--since ${bad}: usage error`);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.match(r.stderr, /--since: expected a duration like 30s, 15m, 2h or 7d/);
  }
  const missing = runCli(['audit', '-c', config], env);
  t.equal(missing.status, 0, 'no audit file yet: not an error');
  t.equal(missing.stdout, '', 'nothing to show');
  t.match(missing.stderr, /no audit log at .*state\/audit\.log yet/);
  const off = setup('audit_file = "off"');
  const r = runCli(['audit', '-c', off.config], off.env);
  t.equal(r.status, 3);
  t.match(r.stderr, /audit log is off/);
});

t.test('table and JSON over current and rotated files, with --profile and --since', async (t) => {
  const { config, env, file } = setup();
  const log = new AuditLog({ file, maxSize: 1024, keep: 3 });
  const old = Date.now() - 3 * 3_600_000;
  log.record(event({ time: new Date(old), profile: 'prod', pid: 1, accessKeyId: 'ASIAFAKEOLD00001' }));
  log.record(event({ time: new Date(old), profile: 'dev', pid: 2, exe: '/tmp/\u001b[31mred\nline' }));
  for (let i = 0; i < 5; i++) log.record(event({ pid: 3 })); // one line now, a summary of 4 at close
  log.record(event({ profile: 'prod', pid: 5, endpoint: 'ecs', exe: null, argv0: null }));
  // (the summary is written after pid 5's line: at close)
  await log.close();
  t.ok(auditFiles(file).length >= 2, 'the records span a rotation');
  appendFileSync(file, 'not json\n{"time":"2026-01-01T00:00:00Z","profile":1}\n');

  const table = runCli(['audit', '-c', config], env);
  t.equal(table.status, 0, table.stderr);
  const rows = table.stdout.trimEnd().split('\n');
  t.match(rows[0], /^TIME +PROFILE +ENDPOINT +ACCESS KEY ID +EXPIRES +UID +PID +REPEATS +EXE$/);
  t.equal(rows.length, 6, 'header and five records');
  t.match(rows[1], /prod +imds +ASIAFAKEOLD00001 .* 1000 +1 +\/usr\/bin\/python3$/);
  t.match(rows[2], /\/tmp\/\\x1b\[31mred\\x0aline$/, 'control characters shown, not obeyed');
  t.notOk(table.stdout.includes('\u001b'), 'no escape character reaches the terminal');
  t.match(rows[4], /prod +ecs .* 5 +-$/, 'unknown exe shown as -');
  t.match(rows[5], / 3 +\+4 +\/usr\/bin\/python3$/, 'the summary row shows the repeats');
  t.equal(table.stderr, 'credport: skipped 2 malformed line(s) in the audit log\n');

  const json = runCli(['audit', '-c', config, '--json'], env);
  t.equal(json.status, 0);
  const all = parse(json.stdout);
  t.same(
    all.map((r) => r.pid),
    [1, 2, 3, 5, 3],
    'oldest first across the rotated files',
  );
  t.same(Object.keys(all[0]!), FIELDS, 'JSON field names');
  t.same(Object.keys(all[4]!), [...FIELDS, 'repeats', 'lastTime']);
  t.equal(all[4]!.repeats, 4);
  t.equal(all[1]!.exe, '/tmp/\u001b[31mred\nline', 'JSON keeps the exact name, escaped');

  t.same(
    parse(runCli(['audit', '-c', config, '--json', '--profile', 'prod'], env).stdout).map((r) => r.pid),
    [1, 5],
    '--profile',
  );
  t.same(
    parse(runCli(['audit', '-c', config, '--json', '--since', '1h'], env).stdout).map((r) => r.pid),
    [3, 5, 3],
    '--since 1h',
  );
  t.same(
    parse(runCli(['audit', '-c', config, '--json', '--since', '4h', '--profile', 'dev'], env).stdout).map((r) => r.pid),
    [2, 3, 3],
    'both',
  );
  t.same(parse(runCli(['audit', '-c', config, '--json', '--profile', 'nope'], env).stdout), [], 'no match: nothing');
});

t.test('dropped notes are shown', async (t) => {
  const { config, env, file } = setup();
  const log = new AuditLog({ file, maxSize: 1024 * 1024, keep: 3, maxQueue: 1 });
  log.record(event({ pid: 1 }));
  log.record(event({ pid: 2 }));
  log.record(event({ pid: 3 }));
  await log.close();
  const table = runCli(['audit', '-c', config], env);
  t.match(table.stdout, /-- 2 handout\(s\) not recorded/);
  const json = parse(runCli(['audit', '-c', config, '--json'], env).stdout);
  t.same(
    json.map((r) => r.dropped ?? r.pid),
    [1, 2],
  );
});

t.test('-f prints new records, across a rotation, until SIGINT', async (t) => {
  const { config, env, file } = setup();
  const log = new AuditLog({ file, maxSize: 600, keep: 2 });
  log.record(event({ pid: 1 }));
  await log.flush();
  const child = spawnCli(['audit', '-c', config, '-f', '--json'], env);
  t.teardown(() => {
    if (child.child.exitCode === null) child.child.kill('SIGKILL');
  });
  const seen = (n: number) => parse(child.stdout()).length >= n;
  const wait = async (n: number) => {
    for (let i = 0; i < 200 && !seen(n); i++) await new Promise((r) => setTimeout(r, 50));
  };
  await wait(1);
  t.same(
    parse(child.stdout()).map((r) => r.pid),
    [1],
    'the existing record first',
  );
  // Enough records to rotate twice while the child polls; older files are deleted beyond keep = 2.
  for (let i = 2; i <= 5; i++) log.record(event({ pid: i }));
  await log.flush();
  const before = auditFiles(file).length;
  await wait(5);
  for (let i = 6; i <= 7; i++) log.record(event({ pid: i }));
  await log.close();
  await wait(7);
  child.child.kill('SIGINT');
  const code = await Promise.race([child.exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
  t.equal(code, 0, 'SIGINT ends it cleanly');
  t.ok(before >= 2, 'the writer rotated');
  t.same(
    parse(child.stdout()).map((r) => r.pid),
    [1, 2, 3, 4, 5, 6, 7],
    'every record once, in order, across rotations',
  );
  t.equal(child.stderr(), '');
});
