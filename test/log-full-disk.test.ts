/**
 * A full disk (issue 10): after ENOSPC the log file must start working again
 * by itself once space is back, and stderr must get a bounded number of
 * complaints, not one per line. A real tmpfs, mounted in a private mount
 * namespace (root and unshare needed, as in CI), is filled for real.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const DRIVER = fileURLToPath(new URL('./helpers/log-full-disk-driver.js', import.meta.url));

function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"'], { timeout: 10_000 });
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
