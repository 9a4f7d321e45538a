// X.509 tooling: a CSR for the device key (signed through the KeySigner), a small local CA that issues
// device certificates from CSRs, and the certificate inspection and chain checks. openssl, where
// present, checks the results independently; a certificate from this CA then works end to end against
// the emulator's Roles Anywhere.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Pkcs10CertificateRequest,
  SubjectKeyIdentifierExtension,
  X509Certificate,
} from '../daemon/x509/x509-lib.js';
import { startEmulator } from '../emulator/index.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { AwsRolesAnywhereProvider } from '../daemon/clouds/aws/rolesanywhere/provider.js';
import { fromKeyFile, fromKeySigner } from '../daemon/x509/signing-key.js';
import { CA_CERT_FILE, CA_KEY_FILE, initCa, issueCertificate } from '../daemon/x509/ca.js';
import { buildCertificate } from '../daemon/x509/certificate-builder.js';
import { createCsr, defaultCsrSubject } from '../daemon/x509/csr.js';
import { checkChain, describeCertificate } from '../daemon/x509/inspect.js';
import { assertPresent, needs, tool } from './helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'credport-x509-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const openssl = tool('openssl', () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0, 'apt-get install openssl');
const signer = FileKeySigner.create(join(dir, 'device-key.pem'));
const signerSpki = createPublicKey({ key: { ...signer.publicJwk() }, format: 'jwk' }).export({ type: 'spki', format: 'der' });

function opensslRun(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

t.test('a CSR for the device key, signed through the KeySigner', async (t) => {
  const csr = await createCsr(signer);
  t.equal(csr.subject, defaultCsrSubject(signer.thumbprint));
  t.match(csr.subject, /^CN=credport device [A-Za-z0-9_-]{16}$/);
  t.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
  const parsed = new Pkcs10CertificateRequest(csr.pem);
  t.ok(await parsed.verify(), 'the signature verifies (@peculiar/x509)');
  t.same(Buffer.from(parsed.publicKey.rawData), signerSpki, 'for the device key');
  t.equal((parsed.signatureAlgorithm as unknown as { name: string }).name, 'ECDSA');

  const named = await createCsr(signer, { subject: 'CN=edge-17, O=Example, C=DE' });
  t.equal(new Pkcs10CertificateRequest(named.pem).subject, 'CN=edge-17, O=Example, C=DE');
  await t.rejects(createCsr(signer, { subject: '   ' }), /needs a subject/);
  await t.rejects(createCsr(signer, { subject: 'not a dn' }), /not a distinguished name/);

  // Any X509SigningKey too: an RSA key file gets a sha256WithRSAEncryption request.
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaPath = join(dir, 'rsa.key');
  writeFileSync(rsaPath, rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  const rsaCsr = new Pkcs10CertificateRequest((await createCsr(fromKeyFile(rsaPath), { subject: 'CN=rsa-box' })).pem);
  t.ok(await rsaCsr.verify());
  t.equal((rsaCsr.signatureAlgorithm as unknown as { name: string }).name, 'RSASSA-PKCS1-v1_5');
  await t.rejects(createCsr(fromKeyFile(rsaPath)), /needs a subject/, 'a file key has no thumbprint for a default subject');
});

t.test('openssl verifies the CSR', needs(openssl), async (t) => {
  if (!assertPresent(t, openssl)) return;
  const path = join(dir, 'device.csr');
  writeFileSync(path, (await createCsr(signer, { subject: 'CN=edge-17, O=Example' })).pem);
  const r = opensslRun(['req', '-in', path, '-noout', '-verify', '-subject']);
  t.equal(r.status, 0, r.out);
  t.match(r.out, /verify OK/i);
  t.match(r.out, /CN\s*=\s*edge-17/);
});

const caDir = join(dir, 'ca');
const caSubject = 'CN=Example device CA, O=Example';

t.test('ca init: a key only we can read and a CA certificate with the right extensions', async (t) => {
  const before = Date.now();
  const ca = await initCa({ dir: caDir, subject: caSubject, days: 3650 });
  t.equal(ca.keyPath, join(caDir, CA_KEY_FILE));
  t.equal(ca.certPath, join(caDir, CA_CERT_FILE));
  t.equal(statSync(ca.keyPath).mode & 0o777, 0o600, 'CA key 0600');
  t.equal(statSync(caDir).mode & 0o777, 0o700, 'CA directory 0700');
  const cert = new X509Certificate(readFileSync(ca.certPath, 'utf8'));
  t.equal(cert.subject, caSubject);
  t.equal(cert.issuer, caSubject, 'self-signed');
  t.ok(await cert.verify({ signatureOnly: true }), 'self-signature verifies');
  const bc = cert.getExtension(BasicConstraintsExtension);
  t.match(bc, { ca: true, pathLength: 0, critical: true }, 'basicConstraints CA:TRUE, pathlen 0, critical');
  const ku = cert.getExtension(KeyUsagesExtension);
  t.equal(ku?.usages, KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, 'keyCertSign + cRLSign');
  t.equal(ku?.critical, true);
  t.ok(cert.getExtension(SubjectKeyIdentifierExtension)?.keyId, 'subject key identifier');
  t.ok(cert.notBefore.getTime() <= before - 4 * 60_000, 'backdated a few minutes');
  t.ok(Math.abs(cert.notAfter.getTime() - (before + 3650 * 86_400_000)) < 60_000);
  t.equal(cert.publicKey.algorithm.name, 'ECDSA');

  await t.rejects(initCa({ dir: caDir, subject: caSubject, days: 10 }), {
    name: 'CaError',
    message: /already exists; credport never overwrites a CA/,
  });
  t.equal(readFileSync(ca.certPath, 'utf8'), `${ca.certificatePem}\n`, 'the first CA is untouched');
  const rsaCa = await initCa({ dir: join(dir, 'rsa-ca'), subject: 'CN=RSA CA', days: 30, keyType: 'rsa-2048' });
  t.equal(new X509Certificate(rsaCa.certificatePem).publicKey.algorithm.name, 'RSASSA-PKCS1-v1_5');
  await t.rejects(initCa({ dir: join(dir, 'bad-ca'), subject: 'CN=x', days: 0 }), { name: 'CaError' });
});

t.test('ca issue: a device certificate from a CSR', async (t) => {
  const csr = await createCsr(signer, { subject: 'CN=edge-17, O=Example' });
  const outPath = join(dir, 'edge-17.pem');
  const now = Date.now();
  const issued = await issueCertificate({ caDir, csrPem: csr.pem, days: 90, outPath });
  t.equal(issued.path, outPath);
  const cert = new X509Certificate(readFileSync(outPath, 'utf8'));
  const ca = new X509Certificate(readFileSync(join(caDir, CA_CERT_FILE), 'utf8'));
  t.equal(cert.subject, 'CN=edge-17, O=Example');
  t.equal(cert.issuer, caSubject);
  t.ok(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }), 'signed by the CA');
  t.same(Buffer.from(cert.publicKey.rawData), signerSpki, "for the CSR's key");
  t.match(cert.getExtension(BasicConstraintsExtension), { ca: false, critical: true });
  t.match(cert.getExtension(KeyUsagesExtension), { usages: KeyUsageFlags.digitalSignature, critical: true });
  t.same(cert.getExtension(ExtendedKeyUsageExtension)?.usages, ['1.3.6.1.5.5.7.3.2'], 'clientAuth');
  t.ok(cert.getExtension(SubjectKeyIdentifierExtension)?.keyId);
  t.equal(
    cert.getExtension(AuthorityKeyIdentifierExtension)?.keyId,
    ca.getExtension(SubjectKeyIdentifierExtension)?.keyId,
    "AKI = the CA's SKI",
  );
  t.match(issued.serialHex, /^[0-7][0-9a-f]{31}$/, 'a positive 128-bit serial');
  t.equal(issued.serialDecimal, BigInt(`0x${issued.serialHex}`).toString(10));
  t.ok(Math.abs(cert.notBefore.getTime() - (now - 5 * 60_000)) < 5_000, 'notBefore five minutes back');
  t.ok(Math.abs(cert.notAfter.getTime() - (now + 90 * 86_400_000)) < 5_000, 'notAfter after the requested days');
  const again = await issueCertificate({ caDir, csrPem: csr.pem, days: 90 });
  t.not(again.serialHex, issued.serialHex, 'every certificate gets its own serial');

  await t.rejects(
    issueCertificate({ caDir, csrPem: csr.pem, days: 90, outPath }),
    { name: 'CaError', message: /already exists/ },
    'never overwrites',
  );
  const der = Buffer.from(csr.pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const last = der.length - 1;
  der[last] = (der[last] ?? 0) ^ 0x01;
  await t.rejects(
    issueCertificate({ caDir, csrPem: der.toString('base64'), days: 1 }),
    { name: 'CaError', message: /signature does not verify/ },
    'a CSR whose signature is broken',
  );
  await t.rejects(issueCertificate({ caDir, csrPem: 'garbage', days: 1 }), { name: 'CaError' });

  chmodSync(join(caDir, CA_KEY_FILE), 0o640);
  await t.rejects(
    issueCertificate({ caDir, csrPem: csr.pem, days: 1 }),
    { name: 'InsecureFileError', message: /chmod 600/ },
    'a CA key others can read is refused',
  );
  chmodSync(join(caDir, CA_KEY_FILE), 0o600);
  const longer = await issueCertificate({ caDir, csrPem: csr.pem, days: 10000 });
  t.ok(longer.notAfter.getTime() <= ca.notAfter.getTime(), 'never outlives the CA');
});

t.test('openssl verifies the issued certificate against the CA', needs(openssl), async (t) => {
  if (!assertPresent(t, openssl)) return;
  const r = opensslRun(['verify', '-CAfile', join(caDir, CA_CERT_FILE), '-purpose', 'sslclient', join(dir, 'edge-17.pem')]);
  t.equal(r.status, 0, r.out);
  t.match(r.out, /edge-17\.pem: OK/);
  const text = opensslRun(['x509', '-in', join(caDir, CA_CERT_FILE), '-noout', '-text']).out;
  t.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  t.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
});

t.test('describeCertificate and checkChain', async (t) => {
  const pem = readFileSync(join(dir, 'edge-17.pem'), 'utf8');
  const caPem = readFileSync(join(caDir, CA_CERT_FILE), 'utf8');
  const d = describeCertificate(pem, { jwk: { ...signer.publicJwk() } });
  t.match(d, {
    subject: 'CN=edge-17, O=Example',
    issuer: caSubject,
    serialHex: /^[0-9a-f]+$/,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: ['1.3.6.1.5.5.7.3.2'],
    isCa: false,
    keyType: 'EC prime256v1',
    fingerprintSha256: /^[0-9a-f]{64}$/,
    selfSigned: false,
    matchesKey: true,
  });
  t.equal(d.serialDecimal, BigInt(`0x${d.serialHex}`).toString(10));
  t.ok(d.notBefore < d.notAfter);
  t.equal(describeCertificate(pem, { spki: signerSpki }).matchesKey, true);
  t.equal(
    describeCertificate(pem, { spki: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }) })
      .matchesKey,
    false,
  );
  t.match(describeCertificate(caPem), { isCa: true, pathLength: 0, keyUsage: ['keyCertSign', 'cRLSign'], selfSigned: true });
  t.throws(() => describeCertificate('no pem here'));

  t.same(checkChain(pem, caPem), { ordered: true, problems: [] }, 'leaf + CA: in order, no problems');
  const withLeaf = checkChain(pem, `${caPem}\n${pem}`);
  t.equal(withLeaf.ordered, false);
  t.match(withLeaf.problems.join('\n'), /is the leaf itself/);

  // root -> intermediate -> leaf, then listed in the wrong order, and an expired leaf.
  const root = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const inter = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = Date.now();
  const span = { notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 86_400_000) };
  const rootPem = (
    await buildCertificate({ subject: 'CN=R', publicKey: root.publicKey, issuer: { privateKey: root.privateKey }, ca: {}, ...span })
  ).toString('pem');
  const interPem = (
    await buildCertificate({
      subject: 'CN=I',
      publicKey: inter.publicKey,
      issuer: { privateKey: root.privateKey, certificatePem: rootPem },
      ca: {},
      ...span,
    })
  ).toString('pem');
  const leafPem = (
    await buildCertificate({
      subject: 'CN=L',
      publicKey: leaf.publicKey,
      issuer: { privateKey: inter.privateKey, certificatePem: interPem },
      ...span,
    })
  ).toString('pem');
  t.same(checkChain(leafPem, `${interPem}\n${rootPem}`), { ordered: true, problems: [] });
  const reversed = checkChain(leafPem, `${rootPem}\n${interPem}`);
  t.equal(reversed.ordered, false);
  t.match(reversed.problems[0], /the leaf \(CN=L\) is not issued by chain certificate 1 \(CN=R\)/);
  t.match(
    checkChain(leafPem, `${interPem}\n${rootPem}`, { at: new Date(now + 2 * 86_400_000) }).problems.join('\n'),
    /the leaf \(CN=L\) expired at/,
  );
  const notCa = (
    await buildCertificate({
      subject: 'CN=I',
      publicKey: inter.publicKey,
      issuer: { privateKey: root.privateKey, certificatePem: rootPem },
      ...span,
    })
  ).toString('pem');
  t.match(checkChain(leafPem, notCa).problems.join('\n'), /chain certificate 1 \(CN=I\) is not a CA certificate/);
  t.ok(existsSync(join(dir, 'edge-17.pem')));
});

t.test('end to end: credport CA as the trust anchor, device key through a CSR', async (t) => {
  const emulator = await startEmulator();
  t.teardown(() => emulator.close());
  const ta = 'arn:aws:rolesanywhere:eu-central-1:111122223333:trust-anchor/11111111-2222-4333-8444-555555555555';
  const profile = 'arn:aws:rolesanywhere:eu-central-1:111122223333:profile/11111111-2222-4333-8444-666666666666';
  const role = 'arn:aws:iam::111122223333:role/edge';
  emulator.createTrustAnchor({ arn: ta, caCertificatePem: readFileSync(join(caDir, CA_CERT_FILE), 'utf8') });
  emulator.createRolesAnywhereProfile({ arn: profile, roleArns: [role] });
  emulator.createRole({
    arn: role,
    trust: { rolesAnywhere: true, rolesAnywhereConditions: { StringEquals: { 'aws:PrincipalTag/x509Subject/CN': 'edge-17' } } },
  });
  const p = new AwsRolesAnywhereProvider({
    key: fromKeySigner(signer),
    certificate: join(dir, 'edge-17.pem'),
    trustAnchorArn: ta,
    profileArn: profile,
    roleArn: role,
    durationSeconds: 3600,
    endpoint: emulator.rolesAnywhereEndpoint,
    maxAttempts: 1,
  });
  const creds = await p.fetch();
  t.equal(emulator.issued(creds.accessKeyId)?.roleArn, role);
  t.equal(p.describe().details?.region, 'eu-central-1');
});
