/**
 * The file key and the identity token, verified independently with jose and
 * node:crypto; issuer export merging a fleet's keys.
 */
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, verify } from 'node:crypto';
import t from 'tap';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { FileKeySigner, KeyFileError } from '../daemon/keys/file/signer.js';
import { mintIdentityToken, defaultSubject } from '../daemon/identity/jwt.js';
import { exportIssuer, IssuerExportError, publishedJwk } from '../daemon/identity/issuer-documents.js';
import { InsecureFileError } from '../daemon/util/secure-file.js';

const dir = mkdtempSync(join(tmpdir(), 'credport-identity-'));

t.test('file key: created 0600, never overwritten, insecure modes refused', async (t) => {
  const path = join(dir, 'sub', 'key.pem');
  const s = FileKeySigner.create(path);
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o700, 'new parent directory is private');
  t.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8 PEM');
  t.throws(() => FileKeySigner.create(path), KeyFileError, 'never overwrites');
  t.equal(FileKeySigner.open(path).thumbprint, s.thumbprint, 'reopens the same key');
  for (const mode of [0o640, 0o604, 0o644]) {
    chmodSync(path, mode);
    t.throws(() => FileKeySigner.open(path), InsecureFileError, `mode ${mode.toString(8)} refused`);
    t.throws(() => FileKeySigner.open(path), /chmod 600/, 'error says how to fix it');
  }
  chmodSync(path, 0o600);
  t.ok(FileKeySigner.open(path));
});

t.test('file key: wrong contents get clear errors that quote nothing', async (t) => {
  const notPem = join(dir, 'notpem');
  writeFileSync(notPem, 'SECRETSECRET', { mode: 0o600 });
  const err = (() => {
    try {
      FileKeySigner.open(notPem);
    } catch (e) {
      return e as Error;
    }
    return undefined;
  })();
  t.type(err, KeyFileError);
  t.notMatch(err?.message ?? '', /SECRETSECRET/, 'the file contents are not quoted');
  const rsa = join(dir, 'rsa.pem');
  const { generateKeyPairSync } = await import('node:crypto');
  writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  t.throws(() => FileKeySigner.open(rsa), /needs an EC P-256 key/);
  t.throws(() => FileKeySigner.open(join(dir, 'missing.pem')), /credport init/);
});

t.test('thumbprint is RFC 7638 (matches jose) and signatures verify', async (t) => {
  const s = FileKeySigner.create(join(dir, 'k2.pem'));
  t.equal(s.thumbprint, await calculateJwkThumbprint(s.publicJwk(), 'sha256'));
  const data = Buffer.from('hello');
  const sig = await s.sign(data);
  t.equal(sig.length, 64, 'raw r||s');
  const pub = createPublicKey({ key: { ...s.publicJwk() }, format: 'jwk' });
  t.ok(verify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig), 'node:crypto verifies');
  t.notOk(verify('sha256', Buffer.from('hellO'), { key: pub, dsaEncoding: 'ieee-p1363' }, sig), 'and rejects other data');
});

t.test('identity token: ES256, kid = thumbprint, the claims STS checks', async (t) => {
  const s = FileKeySigner.create(join(dir, 'k3.pem'));
  const now = Date.UTC(2026, 10, 22, 12, 0, 0);
  const { token, claims } = await mintIdentityToken(s, {
    issuer: 'https://issuer.example',
    subject: defaultSubject(s),
    audience: 'sts.amazonaws.com',
    lifetimeSeconds: 300,
    now: () => now,
  });
  const header = decodeProtectedHeader(token);
  t.same(header, { alg: 'ES256', typ: 'JWT', kid: s.thumbprint });
  const jwks = createLocalJWKSet({ keys: [publishedJwk(s.publicJwk(), s.thumbprint)] });
  const { payload } = await jwtVerify(token, jwks, {
    issuer: 'https://issuer.example',
    audience: 'sts.amazonaws.com',
    currentDate: new Date(now + 1000),
    algorithms: ['ES256'],
  });
  t.equal(payload.sub, `device:${s.thumbprint}`);
  t.equal(payload.iat, now / 1000);
  t.equal(payload.nbf, now / 1000);
  t.equal(payload.exp, now / 1000 + 300);
  t.match(payload.jti, /^[0-9a-f-]{36}$/);
  t.same(payload, { ...claims });
  const other = await mintIdentityToken(s, {
    issuer: 'https://issuer.example',
    subject: 'x',
    audience: 'a',
    lifetimeSeconds: 300,
    now: () => now,
  });
  t.not(JSON.parse(Buffer.from(other.token.split('.')[1]!, 'base64url').toString()).jti, payload.jti, 'jti is unique');
  await t.rejects(jwtVerify(token, jwks, { currentDate: new Date(now + 301_000) }), 'expires after 5 minutes');
  const tampered = token.replace(/\.[^.]+\./, `.${Buffer.from(JSON.stringify({ ...claims, sub: 'other' })).toString('base64url')}.`);
  await t.rejects(jwtVerify(tampered, jwks), 'tampered claims do not verify');
});

t.test('oidc export: discovery + JWKS, merge keeps other devices, idempotent', async (t) => {
  const out = join(dir, 'issuer');
  const issuer = 'https://issuer.example/fleet';
  const a = FileKeySigner.create(join(dir, 'a.pem'));
  const b = FileKeySigner.create(join(dir, 'b.pem'));
  const r1 = exportIssuer(out, issuer, publishedJwk(a.publicJwk(), a.thumbprint));
  t.equal(r1.keyCount, 1);
  const discovery = JSON.parse(readFileSync(join(out, '.well-known', 'openid-configuration'), 'utf8'));
  t.same(discovery, {
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    claims_supported: ['aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'sub'],
  });
  t.equal(statSync(join(out, '.well-known', 'jwks.json')).mode & 0o777, 0o644, 'public documents are world-readable');
  // A key from another tool, with members we do not know, must survive.
  const jwksFile = join(out, '.well-known', 'jwks.json');
  const foreign = { kty: 'RSA', n: 'abc', e: 'AQAB', kid: 'zzz-foreign', use: 'sig', alg: 'RS256' };
  writeFileSync(jwksFile, JSON.stringify({ keys: [...JSON.parse(readFileSync(jwksFile, 'utf8')).keys, foreign] }));
  const r2 = exportIssuer(out, issuer, publishedJwk(b.publicJwk(), b.thumbprint));
  t.equal(r2.keyCount, 3);
  const keys = JSON.parse(readFileSync(jwksFile, 'utf8')).keys as Array<{ kid: string }>;
  t.same(keys.map((k) => k.kid).sort(), [a.thumbprint, b.thumbprint, 'zzz-foreign'].sort());
  t.same(
    keys.find((k) => k.kid === 'zzz-foreign'),
    foreign,
    'foreign key kept byte for byte',
  );
  const before = readFileSync(jwksFile, 'utf8');
  const r3 = exportIssuer(out, issuer, publishedJwk(b.publicJwk(), b.thumbprint));
  t.equal(r3.changed, false, 're-export changes nothing');
  t.equal(readFileSync(jwksFile, 'utf8'), before);
  t.throws(
    () => exportIssuer(out, 'https://other.example', publishedJwk(a.publicJwk(), a.thumbprint)),
    IssuerExportError,
    'another issuer refused',
  );
  writeFileSync(jwksFile, '{broken');
  t.throws(() => exportIssuer(out, issuer, publishedJwk(a.publicJwk(), a.thumbprint)), /not valid JSON/);
  t.equal(readFileSync(jwksFile, 'utf8'), '{broken', 'a broken JWKS is left alone, not replaced');
  t.ok(existsSync(join(out, '.well-known', 'openid-configuration')));
});
