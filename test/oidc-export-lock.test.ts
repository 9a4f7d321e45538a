/**
 * `credport oidc export` into one directory from several processes at the same instant: before the
 * lock, two exports lost a key in 20 of 20 rounds (both read, both merged, the second rename won).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exportIssuer, publishedJwk } from '../daemon/identity/issuer-documents.js';
import { LOCK_NAME, withDirLock } from '../daemon/issuer/dir-lock.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { runCliAsync } from './helpers/cli.js';
import { makeDevice } from './helpers/fleet.js';

const ISSUER = 'https://issuer.example/fleet';
const dir = mkdtempSync(join(tmpdir(), 'credport-export-lock-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const kidsIn = (out: string) =>
  (JSON.parse(readFileSync(join(out, '.well-known', 'jwks.json'), 'utf8')).keys as Array<{ kid: string }>).map((k) => k.kid).sort();

t.test('concurrent export processes into one directory keep every key', async (t) => {
  const devices = Array.from({ length: 6 }, (_, i) => makeDevice(dir, `d${i}`, ISSUER));
  for (let round = 0; round < 4; round++) {
    const out = join(dir, `round${round}`);
    const results = await Promise.all(devices.map((d) => runCliAsync(['oidc', 'export', out, '-c', d.config], {}, 60_000)));
    results.forEach((r, i) => t.equal(r.status, 0, `round ${round}, device ${i}: ${r.stderr.trim()}`));
    t.same(kidsIn(out), devices.map((d) => d.kid).sort(), `round ${round}: all ${devices.length} keys`);
    t.notOk(existsSync(join(out, LOCK_NAME)), 'the lock is gone afterwards');
    t.same(
      readdirSync(join(out, '.well-known')).filter((f) => f.endsWith('.tmp')),
      [],
      'no temp files left behind',
    );
  }
});

t.test("a dead holder's lock is broken; a live holder's is waited for", async (t) => {
  const out = join(dir, 'stale');
  const a = FileKeySigner.create(join(dir, 'stale-a.pem'));
  // A pid that existed and is gone: a child that has exited.
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
  exportIssuer(out, ISSUER, publishedJwk(a.publicJwk(), a.thumbprint));
  writeFileSync(join(out, LOCK_NAME), JSON.stringify({ pid, host: (await import('node:os')).hostname() }));
  const b = FileKeySigner.create(join(dir, 'stale-b.pem'));
  const r = exportIssuer(out, ISSUER, publishedJwk(b.publicJwk(), b.thumbprint));
  t.equal(r.keyCount, 2, 'exported past the stale lock');
  t.notOk(existsSync(join(out, LOCK_NAME)));

  // Held by this (live) process: a second export waits, then gives up with a clear error.
  let slept = 0;
  const err = withDirLock(out, () => {
    try {
      withDirLock(out, () => 'never', { waitMs: 50, sleep: (ms) => (slept += ms), now: () => slept });
      return undefined;
    } catch (e) {
      return e as Error;
    }
  });
  t.match(err?.message, new RegExp(`is locked by pid ${process.pid}`));
  t.ok(slept >= 50, 'it waited before giving up');
  t.notOk(existsSync(join(out, LOCK_NAME)), 'released after use');
});

t.test('the 101st key is refused by export too, and nothing is written', async (t) => {
  const out = join(dir, 'full');
  const keys = Array.from({ length: 100 }, (_, i) => ({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: `k${String(i).padStart(3, '0')}` }));
  const jwksFile = join(out, '.well-known', 'jwks.json');
  exportIssuer(out, ISSUER, publishedJwk(FileKeySigner.create(join(dir, 'full-0.pem')).publicJwk(), 'k000'));
  writeFileSync(jwksFile, JSON.stringify({ keys }));
  const before = readFileSync(jwksFile, 'utf8');
  const d = makeDevice(dir, 'full-101', ISSUER);
  const r = await runCliAsync(['oidc', 'export', out, '-c', d.config], {}, 60_000);
  t.equal(r.status, 1);
  t.match(r.stderr, /already holds 100 keys.*at most 100.*Shard.*Roles Anywhere/s);
  t.equal(readFileSync(jwksFile, 'utf8'), before, 'unchanged');
});
