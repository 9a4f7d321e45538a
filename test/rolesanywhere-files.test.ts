// The files a Roles Anywhere profile reads: private keys in every form aws_signing_helper accepts (and
// the ones it must refuse), and certificate/chain PEM files with their order and content checks.

import t, { type Test } from 'tap';
import { generateKeyPairSync, verify as cryptoVerify, createPublicKey, type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { CertificateSource, loadCertificateChain } from '../daemon/clouds/aws/rolesanywhere/certificates.js';
import { rawToDer as ecdsaRawToDer } from '../daemon/keys/der.js';
import { fromKeyFile, fromKeySigner, X509KeyError } from '../daemon/x509/signing-key.js';
import { buildCertificate } from '../daemon/x509/certificate-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'credport-ra-files-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function secretFile(content: string | Buffer, mode = 0o600): string {
  const p = join(dir, `key-${n++}.pem`);
  writeFileSync(p, content, { mode });
  chmodSync(p, mode);
  return p;
}

// A root -> intermediate -> leaf chain for the certificate file checks (built before any test starts:
// tap ends the file once the queued tests finish).
const now = Date.now();
const root = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const inter = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const window = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 86_400_000) };
const rootPem = (
  await buildCertificate({
    subject: 'CN=Root',
    publicKey: root.publicKey,
    issuer: { privateKey: root.privateKey },
    ca: { pathLength: 1 },
    ...window,
  })
).toString('pem');
const interPem = (
  await buildCertificate({
    subject: 'CN=Inter',
    publicKey: inter.publicKey,
    issuer: { privateKey: root.privateKey, certificatePem: rootPem },
    ca: { pathLength: 0 },
    ...window,
  })
).toString('pem');
const leafPem = (
  await buildCertificate({
    subject: 'CN=leaf, O=Example',
    publicKey: leafKey.publicKey,
    issuer: { privateKey: inter.privateKey, certificatePem: interPem },
    ...window,
  })
).toString('pem');
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const data = Buffer.from('AWS4-X509-ECDSA-SHA256\n20240501T120000Z\nscope\nhash');

async function signsAndVerifies(t: Test, path: string, publicKey: KeyObject, algorithm: string, passphrase?: string): Promise<void> {
  const key = fromKeyFile(path, passphrase);
  t.equal(key.algorithm, algorithm, `${algorithm}`);
  const sig = await key.sign(data);
  t.ok(cryptoVerify('sha256', data, publicKey, sig), 'the signature verifies with SHA-256 (DER for ECDSA)');
  t.same(Buffer.from(key.publicKeySpki?.() ?? []), publicKey.export({ type: 'spki', format: 'der' }), "the SPKI is the key's");
}

t.test('every key form aws_signing_helper reads', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await signsAndVerifies(t, secretFile(rsa.privateKey.export({ type: 'pkcs1', format: 'pem' })), rsa.publicKey, 'AWS4-X509-RSA-SHA256');
  await signsAndVerifies(t, secretFile(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' })), rsa.publicKey, 'AWS4-X509-RSA-SHA256');

  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await signsAndVerifies(t, secretFile(p256.privateKey.export({ type: 'sec1', format: 'pem' })), p256.publicKey, 'AWS4-X509-ECDSA-SHA256');
  await signsAndVerifies(t, secretFile(p256.privateKey.export({ type: 'pkcs8', format: 'pem' })), p256.publicKey, 'AWS4-X509-ECDSA-SHA256');
  // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
  const withParams = `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${p256.privateKey.export({ type: 'sec1', format: 'pem' }) as string}`;
  await signsAndVerifies(t, secretFile(withParams), p256.publicKey, 'AWS4-X509-ECDSA-SHA256');

  // P-384 keeps the algorithm name and the SHA-256 digest, as aws_signing_helper signs it.
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  await signsAndVerifies(t, secretFile(p384.privateKey.export({ type: 'pkcs8', format: 'pem' })), p384.publicKey, 'AWS4-X509-ECDSA-SHA256');

  const encrypted = secretFile(
    p384.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' }),
  );
  await signsAndVerifies(t, encrypted, p384.publicKey, 'AWS4-X509-ECDSA-SHA256', 'correct horse');
  t.throws(() => fromKeyFile(encrypted), { name: 'X509KeyError', message: /is encrypted; configure its passphrase/ });
  t.throws(() => fromKeyFile(encrypted, 'wrong'), { name: 'X509KeyError', message: /could not be decrypted/ });
  const rsaEncrypted = secretFile(rsa.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'pw' }));
  await signsAndVerifies(t, rsaEncrypted, rsa.publicKey, 'AWS4-X509-RSA-SHA256', 'pw');
});

t.test('keys Roles Anywhere cannot use are refused, and messages never quote the key', async (t) => {
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  t.throws(() => fromKeyFile(secretFile(small)), { message: /RSA-1024 key; use 2048 to 4096 bits/ });
  const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  t.throws(() => fromKeyFile(secretFile(p521)), { message: /EC key on secp521r1; use P-256 or P-384/ });
  const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  t.throws(() => fromKeyFile(secretFile(ed)), { message: /ed25519 key/ });
  const garbage = '-----BEGIN PRIVATE KEY-----\nTUlJQ2VBSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NBbUl3Z2dKZUFn\n-----END PRIVATE KEY-----\n';
  const err = (() => {
    try {
      fromKeyFile(secretFile(garbage));
    } catch (e) {
      return e as Error;
    }
    return undefined;
  })();
  t.ok(err instanceof X509KeyError, 'a damaged key is a X509KeyError');
  t.notMatch(err?.message ?? '', 'TUlJQ2Vh', 'the message does not quote the file');
  t.match(err?.message ?? '', /is not a PEM private key/);

  const good = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  t.throws(
    () => fromKeyFile(secretFile(good, 0o644)),
    { name: 'InsecureFileError', message: /chmod 600/ },
    'a key others can read is refused',
  );
  t.throws(() => fromKeyFile(join(dir, 'missing.key')), { name: 'SecretFileNotFoundError' });
});

t.test('a key file replaced on disk is read again before the next signature', async (t) => {
  const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const path = secretFile(a.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const key = fromKeyFile(path);
  t.ok(cryptoVerify('sha256', data, a.publicKey, await key.sign(data)));
  writeFileSync(path, b.privateKey.export({ type: 'pkcs1', format: 'pem' }));
  t.ok(cryptoVerify('sha256', data, b.publicKey, await key.sign(data)), 'signs with the new key');
  t.equal(key.algorithm, 'AWS4-X509-RSA-SHA256', 'and with its algorithm');
});

t.test('the device key (KeySigner) signs DER ECDSA', async (t) => {
  const signer = FileKeySigner.create(join(dir, 'device-key.pem'));
  const key = fromKeySigner(signer);
  t.equal(key.algorithm, 'AWS4-X509-ECDSA-SHA256');
  t.match(key.describe(), /^file key .*device-key\.pem$/);
  const sig = await key.sign(data);
  t.equal(sig[0], 0x30, 'a DER SEQUENCE');
  const pub = createPublicKey({ key: { ...signer.publicJwk() }, format: 'jwk' });
  t.ok(cryptoVerify('sha256', data, pub, sig));
  t.same(Buffer.from(key.publicKeySpki?.() ?? []), pub.export({ type: 'spki', format: 'der' }));
});

t.test('raw r||s to DER', async (t) => {
  // High bits set need a 0x00 pad; leading zeros are stripped; zero stays one byte.
  const r = Buffer.alloc(32, 0);
  r[31] = 1;
  const s = Buffer.alloc(32, 0xff);
  t.same(
    Buffer.from(ecdsaRawToDer(Buffer.concat([r, s]))),
    Buffer.concat([Buffer.from([0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00]), s]),
  );
  t.same(Buffer.from(ecdsaRawToDer(Buffer.alloc(64, 0))), Buffer.from([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]));
  const big = ecdsaRawToDer(Buffer.alloc(96, 0x80));
  t.equal(big[1], 0x66, 'P-384: 2 × (2 + 49) content bytes');
  t.throws(() => ecdsaRawToDer(Buffer.alloc(63)));
});

t.test('certificate and chain files', async (t) => {
  const chain = loadCertificateChain(file('leaf.pem', leafPem), file('chain.pem', `${interPem}\n${rootPem}`));
  t.equal(chain.leaf.subject, 'CN=leaf, O=Example');
  t.equal(chain.chain.length, 2, 'intermediate and root, in order');
  t.match(chain.leaf.serialDecimal, /^\d+$/);
  t.equal(BigInt(`0x${chain.leaf.serialHex}`).toString(10), chain.leaf.serialDecimal);
  t.equal(chain.leaf.keyType, 'EC');

  const full = loadCertificateChain(file('fullchain.pem', `${leafPem}\n${interPem}`));
  t.equal(full.chain.length, 1, 'a fullchain.pem: the certificates after the leaf are its chain');
  t.throws(() => loadCertificateChain(join(dir, 'fullchain.pem'), join(dir, 'chain.pem')), { message: /use one or the other/ });

  t.throws(() => loadCertificateChain(join(dir, 'leaf.pem'), file('with-leaf.pem', `${interPem}\n${leafPem}`)), {
    message: /contains the device certificate itself/,
  });
  t.throws(() => loadCertificateChain(join(dir, 'leaf.pem'), file('reversed.pem', `${rootPem}\n${interPem}`)), {
    message: /not in order: the device certificate \(CN=leaf, O=Example\) is not issued by the next certificate \(CN=Root\)/,
  });
  t.throws(() => loadCertificateChain(join(dir, 'leaf.pem'), file('twice.pem', `${interPem}\n${interPem}`)), {
    message: /same intermediate certificate twice/,
  });
  t.throws(() => loadCertificateChain(file('empty.pem', 'nothing here\n')), { message: /holds no PEM CERTIFICATE block/ });
  t.throws(() => loadCertificateChain(join(dir, 'nope.pem')), { message: /does not exist/ });
  t.throws(() => loadCertificateChain(file('bad.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')), {
    message: /not a valid X\.509 certificate/,
  });
});

t.test('CertificateSource re-reads changed files and drops a broken one', async (t) => {
  const path = file('source.pem', leafPem);
  const source = new CertificateSource(path);
  const first = source.current();
  t.equal(source.current(), first, 'unchanged files are not parsed again');
  const other = (
    await buildCertificate({
      subject: 'CN=renewed',
      publicKey: leafKey.publicKey,
      issuer: { privateKey: inter.privateKey, certificatePem: interPem },
      ...window,
    })
  ).toString('pem');
  writeFileSync(path, other);
  t.equal(source.current().leaf.subject, 'CN=renewed', 'the renewed certificate is used');
  writeFileSync(path, 'half-written');
  t.throws(() => source.current(), { name: 'CertificateError' });
  t.equal(source.peek(), undefined, 'the old certificate is not kept after a broken replacement');
  writeFileSync(path, leafPem);
  t.equal(source.current().leaf.subject, 'CN=leaf, O=Example');
  t.equal(readFileSync(path, 'utf8'), leafPem);
});
