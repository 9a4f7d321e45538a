/**
 * Ordinary accidents with files (issue 10): malformed issuer documents for
 * `oidc export`, and key or token files that are symbolic links, FIFOs or
 * another user's. Each is a clear one-line error with exit 3 that changes
 * nothing, never an "unexpected error" (exit 1) and never a hang.
 */
import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { freePort, runCliAsync, type RunResult } from './helpers/cli.js';
import { startStack, type Stack } from './helpers/stack.js';

/** Every CLI run here is bounded: a FIFO read would otherwise hang the test. */
const runBounded = (args: string[], env: Record<string, string>) => runCliAsync(args, env, 30_000);

async function stackFor(t: Test): Promise<{ stack: Stack; env: Record<string, string> }> {
  const port = await freePort();
  const stack = await startStack({ startDaemon: false, daemon: { listen: `127.0.0.1:${port}` } });
  t.teardown(() => stack.close());
  return { stack, env: { CREDPORT_CONFIG: stack.configFile } };
}

async function fifo(path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const r = spawn('mkfifo', ['-m', '600', path]);
    r.on('error', reject);
    r.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`mkfifo exited ${code}`))));
  });
}

function oneLine(t: Test, r: RunResult, file: string, what: string): void {
  t.equal(r.status, 3, `${what}: exit 3 (${r.stderr.trim()})`);
  t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
  t.ok(r.stderr.includes(file), `${what}: names ${file}`);
  t.notMatch(r.stderr, /unexpected error/, `${what}: not a crash`);
}

t.test('oidc export: malformed existing documents are refused with exit 3, nothing written', async (t) => {
  const { stack, env } = await stackFor(t);
  const issuer = stack.config.oidc?.issuer ?? '';
  const out = join(stack.dir, 'pub');
  const wk = join(out, '.well-known');
  const discovery = join(wk, 'openid-configuration');
  const jwks = join(wk, 'jwks.json');
  const goodDiscovery = JSON.stringify({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json` });
  const cases: Array<{ what: string; discovery: string | 'fifo'; jwks?: string | 'fifo'; names: string }> = [
    { what: 'null discovery document', discovery: 'null', names: discovery },
    { what: 'discovery document that is an array', discovery: '[1]', names: discovery },
    { what: 'discovery document that is not JSON', discovery: '{"issuer":\n', names: discovery },
    { what: 'discovery document that is a FIFO', discovery: 'fifo', names: discovery },
    { what: 'JWKS {"keys":[null]}', discovery: goodDiscovery, jwks: '{"keys":[null]}', names: jwks },
    { what: 'JWKS {"keys":"x"}', discovery: goodDiscovery, jwks: '{"keys":"x"}', names: jwks },
    { what: 'JWKS null', discovery: goodDiscovery, jwks: 'null', names: jwks },
    { what: 'JWKS with a numeric kid', discovery: goodDiscovery, jwks: '{"keys":[{"kid":7}]}', names: jwks },
    { what: 'JWKS with control characters in bad JSON', discovery: goodDiscovery, jwks: '{"keys":\n\u001b[31m\n', names: jwks },
  ];
  for (const c of cases) {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(wk, { recursive: true });
    if (c.discovery === 'fifo') await fifo(discovery);
    else writeFileSync(discovery, c.discovery);
    if (c.jwks !== undefined) writeFileSync(jwks, c.jwks);
    const before = readdirSync(wk).sort();
    const r = await runBounded(['oidc', 'export', out], env);
    oneLine(t, r, c.names, c.what);
    t.notMatch(r.stderr, /\u001b/, `${c.what}: no escape sequence echoed`);
    t.same(readdirSync(wk).sort(), before, `${c.what}: no file added`);
    if (c.jwks !== undefined) t.equal(readFileSync(jwks, 'utf8'), c.jwks, `${c.what}: JWKS unchanged`);
  }
  // And a well-formed directory still exports.
  rmSync(out, { recursive: true, force: true });
  const ok = await runBounded(['oidc', 'export', out], env);
  t.equal(ok.status, 0, ok.stderr);
});

t.test('serve: symlinked, FIFO or foreign-owned key and token files exit 3 with a clear message', async (t) => {
  const { stack, env } = await stackFor(t);
  const key = stack.config.key.backend === 'file' ? stack.config.key.path : '';
  const token = stack.config.daemon.tokenFile;
  const keyReal = `${key}.real`;
  renameSync(key, keyReal);
  symlinkSync(keyReal, key);
  let r = await runBounded(['serve'], env);
  t.equal(r.status, 3, `symlinked key: exit 3 (${r.stderr.trim()})`);
  t.match(r.stderr, /key file .* is a symbolic link/);
  rmSync(key);
  renameSync(keyReal, key);

  rmSync(token, { force: true });
  await fifo(token);
  r = await runBounded(['serve'], env);
  t.equal(r.status, 3, `FIFO token file: exit 3 (${r.stderr.trim()})`);
  t.match(r.stderr, /token file .* is not a regular file/);
  rmSync(token);

  writeFileSync(join(stack.dir, 'token.real'), 'x'.repeat(64), { mode: 0o600 });
  symlinkSync(join(stack.dir, 'token.real'), token);
  r = await runBounded(['serve'], env);
  t.equal(r.status, 3, `symlinked token file: exit 3 (${r.stderr.trim()})`);
  t.match(r.stderr, /token file .* is a symbolic link/);
  rmSync(token);

  if (process.getuid?.() !== 0) {
    t.pass('foreign-owned key: skipped, chown needs root');
  } else {
    const owner = statSync(key);
    chownSync(key, 4242, 4242);
    r = await runBounded(['serve'], env);
    t.equal(r.status, 3, `foreign-owned key: exit 3 (${r.stderr.trim()})`);
    t.match(r.stderr, /key file .* belongs to uid 4242/);
    const exp = await runBounded(['oidc', 'export', join(stack.dir, 'pub2')], env);
    t.equal(exp.status, 3, 'oidc export refuses it too');
    chownSync(key, owner.uid, owner.gid);
  }
  const lock = stack.config.daemon.lockFile;
  t.throws(() => readFileSync(lock), 'no lock left behind by the refused starts');
});
