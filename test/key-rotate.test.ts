/**
 * `credport key rotate` with a running `credport serve` and the emulator's STS verifying JWTs
 * against the JWKS in the export directory it serves: the new key is published before the daemon
 * signs with it, STS accepts it, and the old key leaves only at --finish, after the grace period.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import t from 'tap';
import { exportIssuer, publishedJwk } from '../daemon/identity/issuer-documents.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { runCliAsync, spawnCli, waitFor } from './helpers/cli.js';
import { makeDevice } from './helpers/fleet.js';
import { startStack } from './helpers/stack.js';

t.test('key rotate: publish, switch, grace, finish', async (t) => {
  const stack = await startStack({ startDaemon: false });
  t.teardown(() => stack.close());
  const issuerDir = join(stack.dir, 'issuer');
  const keyPath = join(stack.dir, 'device-key.pem');
  const oldKid = stack.signer.thumbprint;
  const kids = () =>
    (JSON.parse(readFileSync(join(issuerDir, '.well-known', 'jwks.json'), 'utf8')).keys as Array<{ kid: string }>).map((k) => k.kid).sort();
  const cfg = (args: string[]) => runCliAsync([...args, '--config', stack.configFile], {}, 120_000);

  const refused = await cfg(['key', 'rotate', issuerDir]);
  t.equal(refused.status, 3, 'without a fixed subject the rotation is refused');
  t.match(refused.stderr, new RegExp(`set subject = "device:${oldKid}"`));
  t.notOk(existsSync(`${keyPath}.rotation.json`), 'and nothing is started');
  t.notOk(existsSync(`${keyPath}.next`));

  // The subject the roles trust, now fixed in the config.
  const toml = parse(readFileSync(stack.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  toml.oidc = { ...toml.oidc, subject: `device:${oldKid}` };
  writeFileSync(stack.configFile, stringify(toml));

  const serve = spawnCli(['serve', '--config', stack.configFile]);
  t.teardown(() => serve.child.kill('SIGKILL'));
  const runtime = `${stack.dir}/daemon.runtime.json`;
  await waitFor(() => (existsSync(runtime) ? true : undefined), 300);
  const url = JSON.parse(readFileSync(runtime, 'utf8')).url as string;
  const health = async () => (await (await fetch(`${url}/health`)).json()) as { key: { thumbprint: string } };
  await waitFor(async () => ((await fetch(`${url}/health`).catch(() => undefined))?.status === 200 ? true : undefined), 300);
  t.equal((await health()).key.thumbprint, oldKid);

  const bad = await cfg(['key', 'rotate', issuerDir, '--grace', 'soon']);
  t.equal(bad.status, 2, 'a bad duration is a usage error');

  const r = await cfg(['key', 'rotate', issuerDir, '--grace', '1h']);
  t.equal(r.status, 0, r.stderr);
  const newKid = /switched from \S+ to (\S+);/.exec(r.stdout)?.[1] ?? '';
  t.not(newKid, '', r.stdout);
  t.not(newKid, oldKid);
  t.match(r.stdout, new RegExp(`published ${newKid}: ${issuerDir} \\(2 keys\\)`), 'published before the switch');
  t.match(r.stdout, new RegExp(`the daemon signs with ${newKid}`));
  t.same(kids(), [oldKid, newKid].sort(), 'both keys are published during the grace period');
  t.equal((await health()).key.thumbprint, newKid, 'the running daemon took the new key up without a restart');
  t.ok(existsSync(`${keyPath}.retired`), 'the old key file is kept until the rotation finishes');
  t.notOk(existsSync(`${keyPath}.next`));

  // STS (the emulator, verifying with jose against the published JWKS) accepts the new key's JWT.
  const direct = await cfg(['auth', '--direct', '--format', 'json']);
  t.equal(direct.status, 0, `a JWT signed by the new key is accepted: ${direct.stderr}`);

  const early = await cfg(['key', 'rotate', '--finish']);
  t.equal(early.status, 1, 'finishing inside the grace period is refused');
  t.match(early.stderr, /grace period ends at/);
  const again = await cfg(['key', 'rotate']);
  t.equal(again.status, 1, 'and a second rotation waits for this one');
  t.match(again.stderr, /rotation is in progress/);
  t.same(kids(), [oldKid, newKid].sort(), 'neither changed the JWKS');

  const done = await cfg(['key', 'rotate', '--finish', '--now']);
  t.equal(done.status, 0, done.stderr);
  t.match(done.stdout, new RegExp(`revoked ${oldKid}: ${issuerDir} \\(1 keys\\)`));
  t.same(kids(), [newKid], 'only the new key is left');
  t.notOk(existsSync(`${keyPath}.retired`), 'the old key file is destroyed');
  t.notOk(existsSync(`${keyPath}.rotation.json`));
  const after = await cfg(['auth', '--direct', '--format', 'json']);
  t.equal(after.status, 0, `the new key still works: ${after.stderr}`);
  const nothing = await cfg(['key', 'rotate', '--finish']);
  t.equal(nothing.status, 1);
  t.match(nothing.stderr, /no rotation in progress/);
  serve.child.kill('SIGTERM');
  await serve.exited;
});

t.test('an interrupted rotation resumes where it stopped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-rotate-resume-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const issuer = 'https://issuer.example/fleet';
  const issuerDir = join(dir, 'issuer');
  const d = makeDevice(dir, 'dev', issuer);
  exportIssuer(issuerDir, issuer, publishedJwk(FileKeySigner.open(d.keyFile).publicJwk(), d.kid));
  // Stopped after publishing the new key, before the rename: the state says so, KEY.next is there.
  const next = FileKeySigner.create(`${d.keyFile}.next`);
  exportIssuer(issuerDir, issuer, publishedJwk(next.publicJwk(), next.thumbprint));
  writeFileSync(
    `${d.keyFile}.rotation.json`,
    JSON.stringify({ phase: 'published', old_kid: d.kid, new_kid: next.thumbprint, targets: [issuerDir], grace_seconds: 60 }),
    { mode: 0o600 },
  );
  const r = await runCliAsync(['key', 'rotate', '-c', d.config], {}, 60_000);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, new RegExp(`switched from ${d.kid} to ${next.thumbprint}`));
  t.equal(FileKeySigner.open(d.keyFile).thumbprint, next.thumbprint, 'the new key is in place');
  t.equal(FileKeySigner.open(`${d.keyFile}.retired`).thumbprint, d.kid, 'the old one kept aside');
  const jwks = JSON.parse(readFileSync(join(issuerDir, '.well-known', 'jwks.json'), 'utf8')).keys.map((k: { kid: string }) => k.kid);
  t.same(jwks.sort(), [d.kid, next.thumbprint].sort(), 'both still published');
  writeFileSync(`${d.keyFile}.rotation.json`, '{"phase":"elsewhere"}', { mode: 0o600 });
  const broken = await runCliAsync(['key', 'rotate', '-c', d.config], {}, 60_000);
  t.equal(broken.status, 3, 'a state file credport did not write is not acted on');
  t.match(broken.stderr, /is not a rotation state credport wrote/);
});
