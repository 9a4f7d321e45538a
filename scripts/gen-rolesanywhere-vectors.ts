/**
 * Generates the SigV4-X509 golden vectors in test/fixtures/rolesanywhere/: a fixed RSA-2048 device key
 * and a root -> intermediate -> device certificate chain with fixed serials and validity, one fixed
 * CreateSession request, and the canonical request, string to sign, signature and Authorization header
 * credport computes for it. RSA PKCS#1 v1.5 is deterministic, so every byte is reproducible.
 *
 * Run once; the outputs are committed and test/rolesanywhere-golden.test.ts compares against them.
 * Existing keys and certificates are reused (only the expected outputs are rewritten), so re-running
 * never changes the vectors unless the signing code changed; `--regenerate` makes new keys and
 * certificates (and so new vectors).
 *
 *   npx tsc -p tsconfig.json --outDir dist-ra && node dist-ra/scripts/gen-rolesanywhere-vectors.js
 */
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCertificateChain } from '../daemon/clouds/aws/rolesanywhere/certificates.js';
import { signRequest, type SigV4X509Input } from '../daemon/clouds/aws/rolesanywhere/sigv4-x509.js';
import { fromKeyFile } from '../daemon/x509/signing-key.js';
import { buildCertificate } from '../daemon/x509/certificate-builder.js';

/** The fixed request: what the test rebuilds. Query values need SigV4 encoding (':' and '/'). */
const VECTOR_REQUEST = {
  method: 'POST',
  host: 'rolesanywhere.eu-west-1.amazonaws.com',
  path: '/sessions',
  query: {
    profileArn: 'arn:aws:rolesanywhere:eu-west-1:111122223333:profile/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
    roleArn: 'arn:aws:iam::111122223333:role/edge-devices/credport-edge',
    trustAnchorArn: 'arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
  },
  headers: { 'content-type': 'application/json' },
  body: '{"durationSeconds":3600,"roleSessionName":"edge-17"}',
  amzDate: '20240501T120000Z',
  region: 'eu-west-1',
};

const VALID_FROM = new Date('2024-01-01T00:00:00Z');
const VALID_TO = new Date('2044-01-01T00:00:00Z');

async function makeChain(dir: string): Promise<void> {
  const root = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const intermediate = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const device = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rootCert = await buildCertificate({
    subject: 'CN=credport golden root CA, O=credport tests',
    publicKey: root.publicKey,
    issuer: { privateKey: root.privateKey },
    serialHex: '01',
    notBefore: VALID_FROM,
    notAfter: VALID_TO,
    ca: { pathLength: 1 },
  });
  const intermediateCert = await buildCertificate({
    subject: 'CN=credport golden intermediate CA, O=credport tests',
    publicKey: intermediate.publicKey,
    issuer: { privateKey: root.privateKey, certificatePem: rootCert.toString('pem') },
    serialHex: '1000',
    notBefore: VALID_FROM,
    notAfter: VALID_TO,
    ca: { pathLength: 0 },
  });
  const deviceCert = await buildCertificate({
    subject: 'CN=edge-17, O=credport tests',
    publicKey: device.publicKey,
    issuer: { privateKey: intermediate.privateKey, certificatePem: intermediateCert.toString('pem') },
    // Long and with leading digits that differ between hex and decimal, so a wrong base shows.
    serialHex: '5f0e2d4c3b2a19080706050403020100',
    notBefore: VALID_FROM,
    notAfter: VALID_TO,
  });
  writeFileSync(`${dir}/root.pem`, `${rootCert.toString('pem')}\n`);
  writeFileSync(`${dir}/intermediate.pem`, `${intermediateCert.toString('pem')}\n`);
  writeFileSync(`${dir}/device.pem`, `${deviceCert.toString('pem')}\n`);
  // PKCS#1, the form aws_signing_helper's docs show for RSA keys. Only the device key is kept: the CA
  // keys are not needed again. TEST KEY: it signs nothing but these vectors.
  writeFileSync(`${dir}/device.key`, device.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
}

async function main(): Promise<void> {
  const dir = fileURLToPath(new URL('../../test/fixtures/rolesanywhere', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const have = ['device.key', 'device.pem', 'intermediate.pem', 'root.pem'].every((f) => existsSync(`${dir}/${f}`));
  if (!have || process.argv.includes('--regenerate')) await makeChain(dir);

  // Git does not keep file modes: a fresh checkout has the key at 0644, which fromKeyFile refuses.
  const keyCopy = `${dir}/.device.key.0600`;
  writeFileSync(keyCopy, readFileSync(`${dir}/device.key`), { mode: 0o600 });
  createPrivateKey(readFileSync(keyCopy)); // fail early on a damaged key file
  const key = fromKeyFile(keyCopy);
  const chain = loadCertificateChain(`${dir}/device.pem`, `${dir}/intermediate.pem`);
  const input: SigV4X509Input = {
    ...VECTOR_REQUEST,
    algorithm: key.algorithm,
    certificate: chain.leaf.der,
    chain: chain.chain.map((c) => c.der),
    serial: chain.leaf.serialDecimal,
  };
  const signed = await signRequest(input, key);
  writeFileSync(`${dir}/request.json`, `${JSON.stringify(VECTOR_REQUEST, null, 2)}\n`);
  // No trailing newlines: the test compares these files byte for byte.
  writeFileSync(`${dir}/canonical-request.txt`, signed.canonicalRequest);
  writeFileSync(`${dir}/string-to-sign.txt`, signed.stringToSign);
  writeFileSync(`${dir}/signature.hex`, signed.signature);
  writeFileSync(`${dir}/authorization.txt`, signed.headers.authorization ?? '');
  unlinkSync(keyCopy);
  process.stdout.write(`vectors written to ${dir} (serial ${chain.leaf.serialDecimal})\n`);
}

await main();
