/**
 * The RSA device key ([rsa_key]): a file key that signs RS256 JWTs a JOSE verifier accepts, with an
 * RFC 7638 thumbprint, strict about what the file holds; the config table; `init --rsa-key`; and
 * `oidc export` publishing it beside the P-256 device key.
 */
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, importJWK, jwtVerify } from 'jose';
import t from 'tap';
import { resolveConfig } from '../daemon/config/load.js';
import { mintIdentityToken } from '../daemon/identity/jwt.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { openRsaSigner } from '../daemon/keys/open-signer.js';
import { createCsr } from '../daemon/x509/csr.js';
import { Pkcs10CertificateRequest } from '../daemon/x509/x509-lib.js';
import { runCli } from './helpers/cli.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'credport-rsa-'));

t.test('an RSA file key signs RS256 JWTs jose verifies, with an RFC 7638 kid', async (t) => {
  const path = join(tmp(), 'rsa.pem');
  const signer = FileKeySigner.create(path, 'RS256');
  t.equal(statSync(path).mode & 0o777, 0o600, 'created 0600');
  t.equal(signer.algorithm, 'RS256');
  const jwk = signer.publicJwk();
  t.equal(jwk.kty, 'RSA');
  t.same(Object.keys(jwk).sort(), ['e', 'kty', 'n'], 'only the public members');
  t.equal(signer.thumbprint, await calculateJwkThumbprint(jwk), 'thumbprint as jose computes it');
  const { token } = await mintIdentityToken(signer, {
    issuer: 'https://issuer.example',
    subject: 'device:x',
    audience: 'api://AzureADTokenExchange',
    lifetimeSeconds: 300,
  });
  const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as Record<string, unknown>;
  t.same(header, { alg: 'RS256', typ: 'JWT', kid: signer.thumbprint });
  const { payload } = await jwtVerify(token, await importJWK({ ...jwk }, 'RS256'), {
    algorithms: ['RS256'],
    issuer: 'https://issuer.example',
    audience: 'api://AzureADTokenExchange',
  });
  t.equal(payload.sub, 'device:x');
  // Reopened from disk: same key.
  t.equal(FileKeySigner.open(path, 'RS256').thumbprint, signer.thumbprint);
  t.throws(() => FileKeySigner.create(path, 'RS256'), /already exists/, 'never overwritten');
});

t.test('the file must hold the kind of key its table names', async (t) => {
  const dir = tmp();
  const ec = join(dir, 'ec.pem');
  const rsa = join(dir, 'rsa.pem');
  FileKeySigner.create(ec);
  FileKeySigner.create(rsa, 'RS256');
  t.throws(() => FileKeySigner.open(ec, 'RS256'), /holds a ec key; credport needs an RSA key of 2048/);
  t.throws(() => FileKeySigner.open(rsa), /holds a 2048-bit rsa key; credport needs an EC P-256 key/);
  await t.rejects(openRsaSigner({ backend: 'file', path: ec, algorithm: 'RS256' }), /needs an RSA key/);
  const small = join(dir, 'small.pem');
  const { generateKeyPairSync } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  writeFileSync(small, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  t.throws(() => FileKeySigner.open(small, 'RS256'), /1024-bit rsa key/, 'RSA-1024 refused');
});

t.test('an RSA key signs a CSR with sha256WithRSAEncryption', async (t) => {
  const signer = FileKeySigner.create(join(tmp(), 'rsa.pem'), 'RS256');
  const csr = await createCsr(signer, { subject: 'CN=rsa device' });
  const req = new Pkcs10CertificateRequest(csr.pem);
  t.equal((req.signatureAlgorithm as unknown as { name: string }).name, 'RSASSA-PKCS1-v1_5');
  t.ok(await req.verify(), 'self-signature verifies');
});

t.test('[rsa_key] in the config', async (t) => {
  const base = {
    key: { backend: 'file', path: '/k/device-key.pem' },
    oidc: { issuer: 'https://issuer.example' },
    profiles: { default: { type: 'aws-oidc', role_arn: 'arn:aws:iam::111122223333:role/x' } },
  };
  const env = { HOME: '/h', XDG_STATE_HOME: '/s' };
  const none = resolveConfig('/c/config.toml', structuredClone(base), env);
  t.equal(none.rsaKey, undefined, 'optional');
  const file = resolveConfig('/c/config.toml', { ...structuredClone(base), rsa_key: {} }, env);
  t.same(file.rsaKey, { backend: 'file', path: '/s/credport/device-rsa-key.pem', algorithm: 'RS256' }, 'file by default');
  const p11 = resolveConfig(
    '/c/config.toml',
    { ...structuredClone(base), rsa_key: { backend: 'pkcs11', module: '/m.so', token_label: 't', pin_env: 'PIN' } },
    env,
  );
  t.match(p11.rsaKey, { backend: 'pkcs11', keyLabel: 'device-rsa' }, 'a token key labelled device-rsa by default');
  const byUri = resolveConfig(
    '/c/config.toml',
    { ...structuredClone(base), rsa_key: { backend: 'pkcs11', module: '/m.so', uri: 'pkcs11:token=t;object=mine', pin_env: 'PIN' } },
    env,
  );
  t.notOk((byUri.rsaKey as { keyLabel?: string }).keyLabel, 'the URI names the key');
  t.throws(
    () => resolveConfig('/c/config.toml', { ...structuredClone(base), rsa_key: { backend: 'secure-enclave' } }, env),
    /rsa_key\.backend: expected one of "file", "pkcs11" \(the Secure Enclave holds P-256 keys only\)/,
  );
  t.throws(
    () => resolveConfig('/c/config.toml', { ...structuredClone(base), rsa_key: { path: '/k/device-key.pem' } }, env),
    /rsa_key\.path: the device key file/,
  );
  t.throws(
    () =>
      resolveConfig('/c/config.toml', { ...structuredClone(base), rsa_key: { backend: 'pkcs11', module: '/m.so', token_label: 't' } }, env),
    /rsa_key: give exactly one of pin_file and pin_env/,
  );
  t.throws(
    () => resolveConfig('/c/config.toml', { ...structuredClone(base), rsa_key: { pth: 'x' } }, env),
    /rsa_key\.pth: unknown key \(did you mean path\?\)/,
  );
});

t.test('init --rsa-key creates the RSA key; oidc export publishes both keys', async (t) => {
  const home = tmp();
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_STATE_HOME: join(home, 'state') };
  const r = runCli(['init', '--issuer', 'https://issuer.example', '--rsa-key', '--listen', '127.0.0.1:8080'], env);
  t.equal(r.status, 0, r.stderr);
  const rsaPath = join(home, 'state', 'credport', 'device-rsa-key.pem');
  t.equal(statSync(rsaPath).mode & 0o777, 0o600);
  t.match(readFileSync(join(home, 'cfg', 'credport', 'config.toml'), 'utf8'), /\[rsa_key\]\nbackend = "file"/);
  const kid = /^kid:\s+(\S+)/m.exec(r.stdout)?.[1];
  const rsaKid = /^rsa kid:\s+(\S+)/m.exec(r.stdout)?.[1];
  t.ok(kid && rsaKid && kid !== rsaKid, 'two keys, two kids');
  const again = runCli(['init', '--rsa-key'], env);
  t.equal(again.status, 0, again.stderr);
  t.equal(/^rsa kid:\s+(\S+)/m.exec(again.stdout)?.[1], rsaKid, 'kept');
  const exp = runCli(['oidc', 'export', join(home, 'pub')], env);
  t.equal(exp.status, 0, exp.stderr);
  const jwks = JSON.parse(readFileSync(join(home, 'pub', '.well-known', 'jwks.json'), 'utf8')) as {
    keys: Array<{ kid: string; kty: string; alg: string }>;
  };
  t.same(
    jwks.keys.map((k) => [k.kid, k.kty, k.alg]).sort(),
    [
      [kid, 'EC', 'ES256'],
      [rsaKid, 'RSA', 'RS256'],
    ].sort(),
  );
  const discovery = JSON.parse(readFileSync(join(home, 'pub', '.well-known', 'openid-configuration'), 'utf8')) as {
    id_token_signing_alg_values_supported: string[];
  };
  t.same(discovery.id_token_signing_alg_values_supported, ['ES256', 'RS256']);
  t.match(runCli(['oidc', 'export', join(home, 'pub')], env).stdout, /unchanged/, 'exporting again changes nothing');
});

t.test('init --rsa-key with a config that has no [rsa_key] says what to add', async (t) => {
  const home = tmp();
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_STATE_HOME: join(home, 'state') };
  t.equal(runCli(['init', '--listen', '127.0.0.1:8080'], env).status, 0);
  const r = runCli(['init', '--rsa-key'], env);
  t.equal(r.status, 3);
  t.match(r.stderr, /no \[rsa_key\] table/);
  t.notOk(existsSync(join(home, 'state', 'credport', 'device-rsa-key.pem')));
});
