// The Roles Anywhere provider against the emulator's CreateSession, which verifies the SigV4-X509
// signature from what arrived and validates the chain to the trust anchor with pkijs. Every refusal is
// checked from the daemon's side: the ProviderError's code and message name the cause.

import t, { type Test } from 'tap';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../emulator/index.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { loadCertificateChain, type CertificateChain } from '../daemon/clouds/aws/rolesanywhere/certificates.js';
import { AwsRolesAnywhereProvider, type AwsRolesAnywhereProviderOptions } from '../daemon/clouds/aws/rolesanywhere/provider.js';
import { amzDate, signRequest } from '../daemon/clouds/aws/rolesanywhere/sigv4-x509.js';
import { fromKeyFile, fromKeySigner, type X509SigningKey } from '../daemon/x509/signing-key.js';
import { ProviderError } from '../daemon/providers/types.js';
import { buildCertificate, type CertificateSpec } from '../daemon/x509/certificate-builder.js';
import { createCsr } from '../daemon/x509/csr.js';
import { Pkcs10CertificateRequest } from '../daemon/x509/x509-lib.js';

const ACCOUNT = '111122223333';
const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:trust-anchor/3f1a2b3c-0000-4000-8000-000000000001`;
const PROFILE = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:profile/3f1a2b3c-0000-4000-8000-000000000002`;
const OTHER_REGION_PROFILE = `arn:aws:rolesanywhere:us-east-1:${ACCOUNT}:profile/3f1a2b3c-0000-4000-8000-000000000003`;
const ROLE = `arn:aws:iam::${ACCOUNT}:role/edge`;
const NOT_IN_PROFILE = `arn:aws:iam::${ACCOUNT}:role/elsewhere`;
const NOT_TRUSTING = `arn:aws:iam::${ACCOUNT}:role/oidc-only`;
const CN_ONLY = `arn:aws:iam::${ACCOUNT}:role/cn-restricted`;

const dir = mkdtempSync(join(tmpdir(), 'credport-ra-emu-'));
// The emulator's clock; certificates are dated from it.
const start = Date.now();
const clock = start;
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const valid = { notBefore: new Date(start - DAY), notAfter: new Date(start + 30 * DAY) };

const emulator = await startEmulator({ now: () => clock });
t.teardown(async () => {
  await emulator.close();
  rmSync(dir, { recursive: true, force: true });
});

// The PKI: root (P-256, pathLen 1) -> intermediate (P-384, pathLen 0) -> device certificates; and a
// stranger root whose leaves the trust anchor must refuse.
const ec = (curve: 'P-256' | 'P-384'): { publicKey: KeyObject; privateKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: curve });
const root = ec('P-256');
const inter = ec('P-384');
const stranger = ec('P-256');
const pem = async (spec: CertificateSpec): Promise<string> => (await buildCertificate(spec)).toString('pem');
const rootPem = await pem({
  subject: 'CN=credport test root, O=Example',
  publicKey: root.publicKey,
  issuer: { privateKey: root.privateKey },
  ca: { pathLength: 1 },
  notBefore: new Date(start - 10 * DAY),
  notAfter: new Date(start + 365 * DAY),
});
const interPem = await pem({
  subject: 'CN=credport test intermediate, O=Example',
  publicKey: inter.publicKey,
  issuer: { privateKey: root.privateKey, certificatePem: rootPem },
  ca: { pathLength: 0 },
  notBefore: new Date(start - 10 * DAY),
  notAfter: new Date(start + 365 * DAY),
});
const strangerPem = await pem({
  subject: 'CN=someone else, O=Example',
  publicKey: stranger.publicKey,
  issuer: { privateKey: stranger.privateKey },
  ca: {},
  ...valid,
});

let fileNo = 0;
function write(name: string, text: string | Buffer, mode = 0o644): string {
  const p = join(dir, `${fileNo++}-${name}`);
  writeFileSync(p, text, { mode });
  return p;
}

interface Device {
  certPath: string;
  chainPath?: string;
  key: X509SigningKey;
  publicKey: KeyObject;
  privateKey?: KeyObject;
}

/** A device certificate issued by the intermediate (or `issuer`), with its key file. */
async function device(
  subject: string,
  keyPair: { publicKey: KeyObject; privateKey: KeyObject },
  keyFile: string | Buffer,
  opts: Partial<CertificateSpec> & { passphrase?: string } = {},
): Promise<Device> {
  const cert = await pem({
    subject,
    publicKey: keyPair.publicKey,
    issuer: { privateKey: inter.privateKey, certificatePem: interPem },
    ...valid,
    ...opts,
  });
  const keyPath = write('device.key', keyFile, 0o600);
  return {
    certPath: write('device.pem', cert),
    chainPath: write('chain.pem', interPem),
    key: fromKeyFile(keyPath, opts.passphrase),
    publicKey: keyPair.publicKey,
    privateKey: keyPair.privateKey,
  };
}

const rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaDevice = await device('CN=rsa-device, O=Example', rsaPair, rsaPair.privateKey.export({ type: 'pkcs1', format: 'pem' }));
const p256Pair = ec('P-256');
const p256Device = await device('CN=p256-device, O=Example', p256Pair, p256Pair.privateKey.export({ type: 'sec1', format: 'pem' }));
const p384Pair = ec('P-384');
const p384Device = await device(
  'CN=p384-device, O=Example',
  p384Pair,
  p384Pair.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'from-a-file' }),
  { passphrase: 'from-a-file' },
);

// The daemon's own device key: CSR from the KeySigner, certificate issued by the intermediate.
const signer = FileKeySigner.create(join(dir, 'device-key.pem'));
const csr = await createCsr(signer, { subject: 'CN=signer-device, O=Example' });
const csrKey = new Uint8Array(new Pkcs10CertificateRequest(csr.pem).publicKey.rawData);
const signerCert = await pem({
  subject: csr.subject,
  publicKey: csrKey,
  issuer: { privateKey: inter.privateKey, certificatePem: interPem },
  ...valid,
});
const signerDevice: Device = {
  certPath: write('signer.pem', signerCert),
  chainPath: write('chain.pem', interPem),
  key: fromKeySigner(signer),
  publicKey: p256Pair.publicKey,
};

emulator.createTrustAnchor({ arn: TA, caCertificatePem: rootPem });
emulator.createRolesAnywhereProfile({ arn: PROFILE, roleArns: [ROLE, NOT_TRUSTING, CN_ONLY], durationSeconds: 7200 });
emulator.createRolesAnywhereProfile({ arn: OTHER_REGION_PROFILE, roleArns: [ROLE] });
emulator.createRole({ arn: ROLE, maxSessionDurationSeconds: 43200, trust: { rolesAnywhere: true } });
emulator.createRole({ arn: NOT_IN_PROFILE, trust: { rolesAnywhere: true } });
emulator.createRole({ arn: NOT_TRUSTING, trust: { providerUrl: 'https://issuer.example.com' } });
emulator.createRole({
  arn: CN_ONLY,
  trust: { rolesAnywhere: true, rolesAnywhereConditions: { StringEquals: { 'aws:PrincipalTag/x509Subject/CN': 'rsa-device' } } },
});

function provider(d: Device, overrides: Partial<AwsRolesAnywhereProviderOptions> = {}): AwsRolesAnywhereProvider {
  return new AwsRolesAnywhereProvider({
    key: d.key,
    certificate: d.certPath,
    ...(d.chainPath !== undefined ? { chain: d.chainPath } : {}),
    trustAnchorArn: TA,
    profileArn: PROFILE,
    roleArn: ROLE,
    durationSeconds: 3600,
    endpoint: emulator.rolesAnywhereEndpoint,
    now: () => clock,
    maxAttempts: 3,
    retryBaseMs: 1,
    requestTimeoutMs: 2000,
    ...overrides,
  });
}

async function failure(p: AwsRolesAnywhereProvider): Promise<ProviderError> {
  try {
    await p.fetch();
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('fetch() succeeded where a failure was expected');
}

const callsSince = (before: ReturnType<typeof snapshot>): number => emulator.stats.rolesAnywhereCalls - before.rolesAnywhereCalls;
const snapshot = (): { rolesAnywhereCalls: number } => ({ rolesAnywhereCalls: emulator.stats.rolesAnywhereCalls });

async function succeeds(t: Test, d: Device, what: string, overrides: Partial<AwsRolesAnywhereProviderOptions> = {}): Promise<void> {
  const p = provider(d, overrides);
  const creds = await p.fetch();
  const issued = emulator.issued(creds.accessKeyId);
  t.ok(issued, `${what}: the emulator issued these credentials`);
  t.equal(issued?.secretAccessKey, creds.secretAccessKey, `${what}: secret`);
  t.equal(issued?.sessionToken, creds.sessionToken, `${what}: token`);
  t.equal(issued?.via, 'CreateSession');
  t.equal(issued?.certificateSerial, loadCertificateChain(d.certPath).leaf.serialDecimal, `${what}: signed with this certificate`);
  const duration = overrides.durationSeconds ?? 3600;
  t.equal(creds.expiration.getTime(), Math.floor(clock / 1000) * 1000 + duration * 1000, `${what}: expires durationSeconds from now`);
  t.equal(creds.accountId, ACCOUNT);
  t.equal(creds.roleArn, overrides.roleArn ?? ROLE);
}

t.test('RSA, ECDSA P-256 and P-384 file keys and the device KeySigner, through an intermediate', async (t) => {
  await succeeds(t, rsaDevice, 'RSA-2048 PKCS#1');
  const recorded = emulator.issued((await provider(rsaDevice).fetch()).accessKeyId);
  t.match(recorded, {
    subject: 'CN=rsa-device, O=Example',
    audience: TA,
    sessionName: loadCertificateChain(rsaDevice.certPath).leaf.serialHex,
  });
  await succeeds(t, p256Device, 'P-256 SEC1');
  await succeeds(t, p384Device, 'P-384 encrypted PKCS#8');
  await succeeds(t, signerDevice, 'FileKeySigner (CSR)');
  const p = provider(rsaDevice);
  t.same(p.describe(), {
    type: 'aws-rolesanywhere',
    source: `rolesanywhere:CreateSession ${emulator.rolesAnywhereEndpoint}`,
    principal: ROLE,
    details: { roleArn: ROLE, region: REGION },
  });
  const info = p.certificateInfo();
  t.match(info, { subject: 'CN=rsa-device, O=Example', serial: /^\d+$/, path: rsaDevice.certPath });
  t.ok(info?.notAfter instanceof Date);
  t.equal(p.unattended, true);
});

t.test('a leaf signed by the root directly needs no chain header', async (t) => {
  const pair = ec('P-256');
  const cert = await pem({
    subject: 'CN=direct',
    publicKey: pair.publicKey,
    issuer: { privateKey: root.privateKey, certificatePem: rootPem },
    ...valid,
  });
  const d: Device = {
    certPath: write('direct.pem', cert),
    key: fromKeyFile(write('direct.key', pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600)),
    publicKey: pair.publicKey,
  };
  await succeeds(t, d, 'no chain');
});

t.test('durationSeconds: honoured up to the profile maximum', async (t) => {
  await succeeds(t, rsaDevice, '7200 s', { durationSeconds: 7200 });
  const err = await failure(provider(rsaDevice, { durationSeconds: 10800 }));
  t.match(err, {
    code: 'ValidationException',
    retryable: false,
    upstreamStatus: 400,
    message: /exceeds the profile's durationSeconds 7200/,
  });
  t.throws(() => provider(rsaDevice, { durationSeconds: 600 }), { code: 'InvalidConfiguration' });
  t.throws(() => provider(rsaDevice, { durationSeconds: 50000 }), { code: 'InvalidConfiguration' });
});

t.test('certificates the trust anchor does not accept', async (t) => {
  const other = ec('P-256');
  const foreign = await pem({
    subject: 'CN=foreign',
    publicKey: other.publicKey,
    issuer: { privateKey: stranger.privateKey, certificatePem: strangerPem },
    ...valid,
  });
  const foreignDevice: Device = {
    certPath: write('foreign.pem', foreign),
    chainPath: write('foreign-chain.pem', strangerPem),
    key: fromKeyFile(write('foreign.key', other.privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600)),
    publicKey: other.publicKey,
  };
  t.match(
    await failure(provider(foreignDevice)),
    {
      code: 'AccessDeniedException',
      upstreamStatus: 403,
      retryable: false,
      message: /Untrusted certificate: no valid chain to the trust anchor/,
    },
    'a leaf from another CA',
  );

  const expired = await device('CN=expired', p256Pair, p256Pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    notBefore: new Date(start - 10 * DAY),
    notAfter: new Date(start - DAY),
  });
  t.match(await failure(provider(expired)), { code: 'AccessDeniedException', message: /end-entity certificate has expired/ }, 'expired');
  const future = await device('CN=future', p256Pair, p256Pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    notBefore: new Date(start + DAY),
    notAfter: new Date(start + 10 * DAY),
  });
  t.match(
    await failure(provider(future)),
    { code: 'AccessDeniedException', message: /end-entity certificate is not yet valid/ },
    'not yet valid',
  );

  const noSignUsage = await device('CN=no-usage', p256Pair, p256Pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    keyUsage: ['keyEncipherment'],
  });
  t.match(
    await failure(provider(noSignUsage)),
    { code: 'AccessDeniedException', message: /does not allow digitalSignature/ },
    'leaf without digitalSignature',
  );

  // An intermediate under the intermediate breaks the pathLen 0 constraint.
  const sub = ec('P-256');
  const subPem = await pem({
    subject: 'CN=sub-ca',
    publicKey: sub.publicKey,
    issuer: { privateKey: inter.privateKey, certificatePem: interPem },
    ca: {},
    ...valid,
  });
  const deep = await pem({
    subject: 'CN=too-deep',
    publicKey: p256Pair.publicKey,
    issuer: { privateKey: sub.privateKey, certificatePem: subPem },
    ...valid,
  });
  const deepDevice: Device = {
    certPath: write('deep.pem', deep),
    chainPath: write('deep-chain.pem', `${subPem}\n${interPem}`),
    key: p256Device.key,
    publicKey: p256Pair.publicKey,
  };
  t.match(await failure(provider(deepDevice)), { code: 'AccessDeniedException', message: /pathLenConstraint/ }, 'path length exceeded');
});

/** Signs a CreateSession by hand (the provider's low-level path) and sends it, optionally tampered. */
async function rawCreateSession(
  d: Device,
  opts: { atMs?: number; chainDers?: Uint8Array[]; tamper?: (h: Record<string, string>, body: { text: string }) => void } = {},
): Promise<{ status: number; code: string | null; body: { message?: string } }> {
  const loaded: CertificateChain = loadCertificateChain(d.certPath, d.chainPath);
  const url = new URL(`${emulator.rolesAnywhereEndpoint}/sessions`);
  const body = { text: JSON.stringify({ durationSeconds: 900 }) };
  const signed = await signRequest(
    {
      method: 'POST',
      host: url.host,
      path: url.pathname,
      query: { profileArn: PROFILE, roleArn: ROLE, trustAnchorArn: TA },
      headers: { 'content-type': 'application/json' },
      body: body.text,
      amzDate: amzDate(opts.atMs ?? clock),
      region: REGION,
      algorithm: d.key.algorithm,
      certificate: loaded.leaf.der,
      chain: opts.chainDers ?? loaded.chain.map((c) => c.der),
      serial: loaded.leaf.serialDecimal,
    },
    d.key,
  );
  const { host: _host, ...headers } = signed.headers;
  opts.tamper?.(headers, body);
  const res = await fetch(`${url.origin}${url.pathname}?${signed.queryString}`, { method: 'POST', headers, body: body.text });
  return { status: res.status, code: res.headers.get('x-amzn-errortype'), body: (await res.json()) as { message?: string } };
}

t.test('a device clock ten minutes off: refused as signed, then recovered by skew correction', async (t) => {
  const ahead = await rawCreateSession(rsaDevice, { atMs: clock + 10 * 60_000 });
  t.match(
    ahead,
    { status: 403, code: 'AccessDeniedException', body: { message: /^Signature not yet current: \d{8}T\d{6}Z is still later than/ } },
    'ten minutes ahead',
  );
  const behind = await rawCreateSession(rsaDevice, { atMs: clock - 10 * 60_000 });
  t.match(
    behind,
    {
      status: 403,
      code: 'AccessDeniedException',
      body: { message: /^Signature expired: \d{8}T\d{6}Z is now earlier than .* - 5 min\.\)$/ },
    },
    'ten minutes behind',
  );
  t.equal((await rawCreateSession(rsaDevice, { atMs: clock - 4 * 60_000 })).status, 201, 'four minutes off is within the window');

  for (const offset of [10 * 60_000, -10 * 60_000]) {
    const before = snapshot();
    const p = provider(rsaDevice, { now: () => clock + offset, maxAttempts: 1 });
    const creds = await p.fetch();
    t.ok(emulator.issued(creds.accessKeyId), `device clock ${offset > 0 ? 'ahead' : 'behind'}: credentials after re-signing`);
    t.equal(callsSince(before), 2, 'one refused call, one re-signed call (not counted as a retry)');
    t.ok(Math.abs(p.clockSkewMs + offset) < 2000, `the learnt offset (${p.clockSkewMs} ms) undoes the device's`);
    const again = snapshot();
    await p.fetch();
    t.equal(callsSince(again), 1, 'the next refresh is signed with the corrected time at once');
  }
});

t.test('tampering after signing is caught by the signature', async (t) => {
  const strangerB64 = Buffer.from(strangerPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('base64');
  const chainSwapped = await rawCreateSession(rsaDevice, {
    tamper: (h) => {
      h['x-amz-x509-chain'] = strangerB64;
    },
  });
  t.match(
    chainSwapped,
    { status: 403, code: 'AccessDeniedException', body: { message: /Signature is not valid/ } },
    'X-Amz-X509-Chain replaced',
  );
  const chainDropped = await rawCreateSession(rsaDevice, {
    tamper: (h) => {
      delete h['x-amz-x509-chain'];
    },
  });
  t.match(chainDropped, { status: 403, body: { message: /X-Amz-X509-Chain|x-amz-x509-chain|not carry it/ } }, 'X-Amz-X509-Chain removed');
  const bodyChanged = await rawCreateSession(rsaDevice, {
    tamper: (_h, b) => {
      b.text = JSON.stringify({ durationSeconds: 3600 });
    },
  });
  t.match(bodyChanged, { status: 403, body: { message: /Signature is not valid/ } }, 'body changed');
  const dateChanged = await rawCreateSession(rsaDevice, {
    tamper: (h) => {
      h['x-amz-date'] = amzDate(clock + 1000);
    },
  });
  t.match(dateChanged, { status: 403, body: { message: /Signature is not valid/ } }, 'X-Amz-Date changed');
  const serialChanged = await rawCreateSession(rsaDevice, {
    tamper: (h) => {
      h.authorization = (h.authorization ?? '').replace(/Credential=\d+/, 'Credential=12345');
    },
  });
  t.match(serialChanged, { status: 403, body: { message: /not the serial number of the certificate/ } }, 'credential serial changed');
  const unsigned = await rawCreateSession(rsaDevice, {
    tamper: (h) => {
      delete h.authorization;
    },
  });
  t.match(unsigned, { status: 403, code: 'AccessDeniedException', body: { message: /not signed/ } }, 'no Authorization');
  const otherKey = await rawCreateSession({
    ...rsaDevice,
    key: fromKeyFile(
      write(
        'other-rsa.key',
        generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }),
        0o600,
      ),
    ),
  });
  t.match(otherKey, { status: 403, body: { message: /Signature is not valid/ } }, "signed by a key that is not the certificate's");
});

t.test('a chain that includes the leaf', async (t) => {
  const withLeaf = write('chain-with-leaf.pem', `${interPem}\n${readFileSync(rsaDevice.certPath, 'utf8')}`);
  const before = snapshot();
  const err = await failure(provider({ ...rsaDevice, chainPath: withLeaf }));
  t.match(
    err,
    { code: 'CertificateUnavailable', message: /contains the device certificate itself/ },
    'the provider refuses the chain file',
  );
  t.equal(callsSince(before), 0, 'before any call');
  const loaded = loadCertificateChain(rsaDevice.certPath, rsaDevice.chainPath);
  const raw = await rawCreateSession(rsaDevice, { chainDers: [loaded.chain[0]?.der ?? new Uint8Array(), loaded.leaf.der] });
  t.match(
    raw,
    { status: 403, code: 'AccessDeniedException', body: { message: /must not contain the end-entity certificate/ } },
    'and so does the emulator',
  );
});

t.test('profile, role and trust policy', async (t) => {
  t.match(
    await failure(provider(rsaDevice, { roleArn: NOT_IN_PROFILE })),
    { code: 'AccessDeniedException', message: /profile does not allow the role/ },
    'role not in the profile',
  );
  t.match(
    await failure(provider(rsaDevice, { roleArn: NOT_TRUSTING })),
    { code: 'AccessDeniedException', message: /not authorized to assume .*trust policy/ },
    'role does not trust Roles Anywhere',
  );
  await succeeds(t, rsaDevice, 'x509Subject/CN condition holds', { roleArn: CN_ONLY });
  t.match(await failure(provider(p256Device, { roleArn: CN_ONLY })), { code: 'AccessDeniedException' }, 'x509Subject/CN condition fails');
  const missingAnchor = await failure(provider(rsaDevice, { trustAnchorArn: TA.replace(/0001$/, '0009') }));
  t.match(missingAnchor, {
    code: 'ResourceNotFoundException',
    upstreamStatus: 404,
    retryable: false,
    message: /Trust anchor .* was not found/,
  });
  const missingProfile = await failure(provider(rsaDevice, { profileArn: PROFILE.replace(/0002$/, '0009') }));
  t.match(missingProfile, { code: 'ResourceNotFoundException', message: /Profile .* was not found/ });
  t.match(await failure(provider(rsaDevice, { roleSessionName: 'edge-17' })), {
    code: 'ValidationException',
    message: /does not accept a custom roleSessionName/,
  });
});

t.test('a profile in another region than the trust anchor fails before any call', async (t) => {
  const before = snapshot();
  t.throws(() => provider(rsaDevice, { profileArn: OTHER_REGION_PROFILE }), {
    name: 'ProviderError',
    code: 'InvalidConfiguration',
    retryable: false,
    message: /profile is in us-east-1 but the trust anchor is in eu-west-1/,
  });
  t.throws(() => provider(rsaDevice, { trustAnchorArn: 'arn:aws:iam::111122223333:role/x' }), { code: 'InvalidConfiguration' });
  t.equal(callsSince(before), 0);
});

t.test('throttling and 5xx are retried with backoff; errors keep the service code', async (t) => {
  let before = snapshot();
  emulator.setFault(
    { kind: 'error', status: 429, code: 'ThrottlingException', message: 'Rate exceeded' },
    { times: 2, service: 'rolesanywhere' },
  );
  await succeeds(t, rsaDevice, 'after two throttles');
  t.equal(callsSince(before), 3, 'three attempts');

  before = snapshot();
  emulator.setFault(
    { kind: 'error', status: 500, code: 'InternalServerException', message: 'boom' },
    { times: 1, service: 'rolesanywhere' },
  );
  await succeeds(t, rsaDevice, 'after a 500');
  t.equal(callsSince(before), 2);

  before = snapshot();
  emulator.setFault(
    { kind: 'error', status: 429, code: 'ThrottlingException', message: 'Rate exceeded' },
    { times: 5, service: 'rolesanywhere' },
  );
  t.match(await failure(provider(rsaDevice, { maxAttempts: 2 })), {
    code: 'ThrottlingException',
    retryable: true,
    upstreamStatus: 429,
    message: 'Rate exceeded',
  });
  t.equal(callsSince(before), 2, 'maxAttempts bounds the attempts');
  emulator.setFault(null);

  emulator.setFault({ kind: 'error', status: 403, code: 'AccessDeniedException', message: 'nope' }, { times: 1, service: 'rolesanywhere' });
  before = snapshot();
  t.match(await failure(provider(rsaDevice)), { code: 'AccessDeniedException', retryable: false });
  t.equal(callsSince(before), 1, 'a refusal is not retried');

  emulator.setFault({ kind: 'error', status: 429, code: 'ThrottlingException', message: 'x' }, { times: 1, service: 'sts' });
  await succeeds(t, rsaDevice, 'a fault for STS does not touch Roles Anywhere');
  emulator.setFault(null);
});

t.test('malformed, truncated, unreachable and slow answers', async (t) => {
  emulator.setFault({ kind: 'malformed' }, { times: 1, service: 'rolesanywhere' });
  t.match(await failure(provider(rsaDevice)), { code: 'MalformedResponse', retryable: true, message: /not JSON/ });
  emulator.setFault({ kind: 'truncated' }, { times: 1, service: 'rolesanywhere' });
  t.match(await failure(provider(rsaDevice)), { code: 'MalformedResponse', message: /not JSON/ });
  emulator.setFault({ kind: 'unavailable' }, { times: 3, service: 'rolesanywhere' });
  t.match(await failure(provider(rsaDevice)), { code: 'UpstreamUnreachable', retryable: true });
  emulator.setFault({ kind: 'delay', ms: 1500 }, { times: 1, service: 'rolesanywhere' });
  t.match(await failure(provider(rsaDevice, { requestTimeoutMs: 100, maxAttempts: 1 })), { code: 'UpstreamTimeout', retryable: true });
  emulator.setFault(null);
  // A port that was free a moment ago (fetch refuses some low ports outright, so no fixed one).
  const deadPort = await new Promise<number>((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const dead = provider(rsaDevice, { endpoint: `http://127.0.0.1:${deadPort}`, maxAttempts: 1 });
  t.match(await failure(dead), { code: 'UpstreamUnreachable', message: /ECONNREFUSED/ });
  const abort = new AbortController();
  abort.abort();
  await t.rejects(provider(rsaDevice).fetch(abort.signal), { code: 'Aborted' });
});

t.test('a certificate replaced on disk is used without a new provider', async (t) => {
  const certPath = write('rotating.pem', readFileSync(rsaDevice.certPath));
  const p = provider({ ...rsaDevice, certPath });
  const first = await p.fetch();
  const firstSerial = emulator.issued(first.accessKeyId)?.certificateSerial;
  const renewed = await pem({
    subject: 'CN=rsa-device, O=Example',
    publicKey: rsaPair.publicKey,
    issuer: { privateKey: inter.privateKey, certificatePem: interPem },
    ...valid,
  });
  writeFileSync(certPath, renewed);
  const second = await p.fetch();
  const secondSerial = emulator.issued(second.accessKeyId)?.certificateSerial;
  t.not(secondSerial, firstSerial, 'the renewed certificate signed the next request');
  t.equal(secondSerial, loadCertificateChain(certPath).leaf.serialDecimal);
  t.equal(p.certificateInfo()?.serial, secondSerial, 'certificateInfo follows the file');

  // A certificate for another key is caught before calling.
  const otherKey = ec('P-256');
  writeFileSync(
    certPath,
    await pem({
      subject: 'CN=other',
      publicKey: otherKey.publicKey,
      issuer: { privateKey: inter.privateKey, certificatePem: interPem },
      ...valid,
    }),
  );
  t.match(await failure(p), { code: 'KeyCertificateMismatch' });
  const rsa3072 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(
    certPath,
    await pem({
      subject: 'CN=other-rsa',
      publicKey: rsa3072.publicKey,
      issuer: { privateKey: inter.privateKey, certificatePem: interPem },
      ...valid,
    }),
  );
  t.match(await failure(p), { code: 'KeyCertificateMismatch', message: /is not for key file/ });
  writeFileSync(certPath, 'gone');
  t.match(await failure(p), { code: 'CertificateUnavailable', retryable: true });
  t.equal(p.certificateInfo(), undefined);
});

t.test('the wire: 201 JSON shaped like the service, errors with x-amzn-ErrorType', async (t) => {
  const ok = await (async () => {
    const loaded = loadCertificateChain(rsaDevice.certPath, rsaDevice.chainPath);
    const url = new URL(`${emulator.rolesAnywhereEndpoint}/sessions`);
    const signed = await signRequest(
      {
        method: 'POST',
        host: url.host,
        path: url.pathname,
        query: { profileArn: PROFILE, roleArn: ROLE, trustAnchorArn: TA },
        headers: { 'content-type': 'application/json' },
        body: '{"durationSeconds":900}',
        amzDate: amzDate(clock),
        region: REGION,
        algorithm: rsaDevice.key.algorithm,
        certificate: loaded.leaf.der,
        chain: loaded.chain.map((c) => c.der),
        serial: loaded.leaf.serialDecimal,
      },
      rsaDevice.key,
    );
    const { host: _h, ...headers } = signed.headers;
    return fetch(`${url.origin}${url.pathname}?${signed.queryString}`, { method: 'POST', headers, body: '{"durationSeconds":900}' });
  })();
  t.equal(ok.status, 201);
  t.equal(ok.headers.get('content-type'), 'application/json');
  const body = (await ok.json()) as Record<string, unknown>;
  t.same(Object.keys(body), ['credentialSet', 'subjectArn']);
  const set = (body.credentialSet as Record<string, unknown>[])[0] ?? {};
  t.same(Object.keys(set), ['assumedRoleUser', 'credentials', 'packedPolicySize', 'roleArn', 'sourceIdentity']);
  t.match(set, {
    assumedRoleUser: {
      arn: new RegExp(`^arn:aws:sts::${ACCOUNT}:assumed-role/edge/[0-9a-f]+$`),
      assumedRoleId: /^AROA[A-Z2-7]{17}:[0-9a-f]+$/,
    },
    credentials: {
      accessKeyId: /^ASIA[A-Z2-7]{16}$/,
      expiration: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
      secretAccessKey: /./,
      sessionToken: /./,
    },
    roleArn: ROLE,
    sourceIdentity: 'CN=rsa-device',
  });
  t.equal(
    (set.assumedRoleUser as { arn: string }).arn.split('/').pop(),
    loadCertificateChain(rsaDevice.certPath).leaf.serialHex,
    'the default session name is the serial in hex',
  );
  t.match(body.subjectArn, new RegExp(`^arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:subject/[0-9a-f-]{36}$`));

  const denied = await fetch(`${emulator.rolesAnywhereEndpoint}/sessions?profileArn=x&roleArn=y&trustAnchorArn=${encodeURIComponent(TA)}`, {
    method: 'POST',
    body: '{}',
  });
  t.equal(denied.status, 403);
  t.equal(denied.headers.get('x-amzn-errortype'), 'AccessDeniedException');
  t.same(Object.keys((await denied.json()) as object), ['message']);
  const bad = await fetch(`${emulator.rolesAnywhereEndpoint}/sessions`, { method: 'POST', body: 'not json' });
  t.equal(bad.status, 400);
  t.equal(bad.headers.get('x-amzn-errortype'), 'ValidationException');
  t.equal((await fetch(`${emulator.rolesAnywhereEndpoint}/sessions`)).status, 405);
  const s = emulator.stats;
  t.ok(s.rolesAnywhereCalls >= s.rolesAnywhereSuccesses + s.rolesAnywhereFailures - 0 && s.rolesAnywhereSuccesses > 0, 'counted in stats');
});

t.test('setup is validated', async (t) => {
  t.throws(() => emulator.createTrustAnchor({ arn: TA, caCertificatePem: rootPem }), { code: 'EntityAlreadyExists' });
  t.throws(() => emulator.createTrustAnchor({ arn: 'arn:aws:rolesanywhere:eu-west-1:111122223333:profile/x', caCertificatePem: rootPem }), {
    code: 'ValidationError',
  });
  t.throws(() => emulator.createTrustAnchor({ arn: TA.replace(/0001$/, '0005'), caCertificatePem: 'no pem' }), { code: 'ValidationError' });
  const leafOnly = readFileSync(rsaDevice.certPath, 'utf8');
  t.throws(() => emulator.createTrustAnchor({ arn: TA.replace(/0001$/, '0006'), caCertificatePem: leafOnly }), {
    code: 'ValidationError',
    message: /not a CA certificate/,
  });
  t.throws(() => emulator.createRolesAnywhereProfile({ arn: PROFILE.replace(/0002$/, '0007'), roleArns: ['nope'] }), {
    code: 'ValidationError',
  });
  t.throws(() => emulator.createRolesAnywhereProfile({ arn: PROFILE.replace(/0002$/, '0008'), roleArns: [ROLE], durationSeconds: 60 }), {
    code: 'ValidationError',
  });
  t.throws(() => emulator.createRole({ arn: `arn:aws:iam::${ACCOUNT}:role/nothing`, trust: {} }), {
    code: 'ValidationError',
    message: /must name/,
  });
  t.throws(() => emulator.setFault({ kind: 'malformed' }, { service: 'iam' as never }), { code: 'ValidationError' });
});
