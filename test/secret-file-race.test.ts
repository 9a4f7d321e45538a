/**
 * Two writers creating the same secret (the daemon and `credport env` both ensure the Google
 * subject-token secret; two `serve` starts the token): every one of them ends with the same complete
 * secret, none reads a half-written file, and no temporary file is left behind.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createSecretFile } from '../daemon/util/secure-file.js';

const TOKEN_MODULE = fileURLToPath(new URL('../daemon/server/token.js', import.meta.url));
// Each child waits for the same instant, then ensures the file and prints what it got (or its error).
const CHILD = `
import(process.argv[1]).then(async ({ ensureTokenFile }) => {
  const at = Number(process.argv[3]);
  while (Date.now() < at) {}
  try { process.stdout.write('ok ' + ensureTokenFile(process.argv[2])); }
  catch (e) { process.stdout.write('error ' + e.message); }
});`;

function child(path: string, at: number): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['-e', CHILD, TOKEN_MODULE, path, String(at)], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 20_000,
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out));
  });
}

t.test('racing creators all get the one complete secret', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-race-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (let round = 0; round < 8; round++) {
    const path = join(dir, `secret-${round}`);
    const at = Date.now() + 400;
    const results = await Promise.all(Array.from({ length: 6 }, () => child(path, at)));
    t.same(
      results.filter((r) => !r.startsWith('ok ')),
      [],
      `round ${round}: no writer failed or read a partial file`,
    );
    t.equal(new Set(results).size, 1, `round ${round}: every writer got the same secret`);
    t.equal(statSync(path).mode & 0o777, 0o600);
  }
  t.same(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file left',
  );
});

t.test('an existing file is never replaced', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-race-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'secret');
  writeFileSync(path, 'theirs', { mode: 0o600 });
  t.throws(() => createSecretFile(path, 'mine'), { code: 'EEXIST' });
  t.same(readdirSync(dir), ['secret'], 'and nothing is left beside it');
});
