/**
 * A full disk (issue 10): after ENOSPC the log file must start working again
 * by itself once space is back, and stderr must get a bounded number of
 * complaints, not one per line. A real tmpfs, mounted in a private mount
 * namespace (root and unshare needed, as in CI), is filled for real.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { RotatingFileWriter } from '../daemon/logging/rotating-file.js';

const DRIVER = fileURLToPath(new URL('./helpers/log-full-disk-driver.js', import.meta.url));

function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const r = spawnSync(
    'unshare',
    ['-m', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"'],
    { timeout: 10_000 },
  );
  return r.status === 0;
}

t.test('the log recovers by itself after ENOSPC and complains at most once a minute', async (t) => {
  if (!canMountTmpfs()) {
    t.pass('skipped: needs root and unshare -m to mount a tmpfs');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'credport-fulldisk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The mount exists only in the namespace, so it vanishes with the driver even if the test dies.
  const script = `mount -t tmpfs -o size=256k,mode=0700 tmpfs "$1" && exec env -u NODE_OPTIONS "$2" "$3" "$1"`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, process.execPath, DRIVER], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { PATH: process.env.PATH },
  });
  t.equal(r.status, 0, `driver ran (${r.stderr.slice(0, 500)})`);
  const out = JSON.parse(r.stdout) as { full: boolean; files: string[]; mode: number; text: string };
  t.ok(out.full, 'the disk really filled (ENOSPC)');
  t.same(out.files, ['credport.log'], 'log_file is the file written');
  t.equal(out.mode, 0o600, 'log file mode 0600');
  t.match(out.text, /line before the disk filled/);
  const after = out.text.split('\n').filter((l) => l.includes('line after space came back'));
  t.equal(after.length, 5, 'every line logged after space came back is in the file');
  for (const l of after) t.doesNotThrow(() => JSON.parse(l), 'and is a whole JSON line');
  t.match(out.text, /"msg":"\d+ log line\(s\) were lost: the log file could not be written \(ENOSPC\)"/, 'the log says what was lost');
  const complaints = r.stderr.split('\n').filter((l) => l.trim() !== '');
  t.ok(complaints.length >= 1 && complaints.length <= 2, `stderr: ${complaints.length} line(s), not one per lost line`);
  t.match(complaints[0] ?? '', /cannot write the log file .*\(ENOSPC\); \d+ line\(s\) lost so far/);
  t.notMatch(r.stderr, /worker has exited/);
});

t.test('rotation: log_file is the file written, old files NAME.N.log (highest newest), only `keep` kept, all 0600', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-rotate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'logs', 'credport.log');
  const complaints: string[] = [];
  const w = new RotatingFileWriter({ file, maxBytes: 1024, keep: 2, complain: (l) => complaints.push(l) });
  // About 117 bytes a line: 8 lines a file, so 40 lines make 5 files, of which the newest 2 old ones stay.
  for (let i = 0; i < 40; i++) {
    w.write(`${JSON.stringify({ i, msg: 'x'.repeat(100) })}\n`);
    w.flushSync(); // one batch per line, as under a steady trickle
  }
  w.end();
  const files = readdirSync(join(dir, 'logs')).sort();
  t.same(files, ['credport.3.log', 'credport.4.log', 'credport.log'], `newest two kept (${files.join(', ')})`);
  for (const f of files) t.equal(statSync(join(dir, 'logs', f)).mode & 0o777, 0o600, `${f} is 0600`);
  const last = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { i: number }).i);
  t.equal(last.at(-1), 39, 'the current file holds the latest line');
  const older = readFileSync(join(dir, 'logs', 'credport.4.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { i: number }).i);
  t.equal(older.at(-1), (last[0] ?? 0) - 1, 'and the highest numbered file the lines just before');
  for (const f of files) t.ok(statSync(join(dir, 'logs', f)).size <= 1024, `${f} within the size limit`);
  t.same(complaints, [], 'nothing to complain about');
});
