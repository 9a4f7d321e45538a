/**
 * The Roles Anywhere certificate stored on the PKCS#11 token next to its key (`certificate = "token"`):
 * the addon reads CKO_CERTIFICATE objects, Pkcs11Signer.readCertificates() finds the key's own (same
 * CKA_ID) leaf first and re-opens after the token went away, and the daemon serves credentials signed
 * with it to the real SDK, picks up a certificate replaced on the token at the next refresh, and reports
 * a missing one in /health while its other profiles keep serving. Config validation and the token
 * certificate source are checked without hardware first.
 *
 * Its own file: the re-open check needs this process to hold no other session on the module (SoftHSM
 * only rescans its tokens when re-initialised), as in pkcs11-reinsert.test.ts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { fromHttp } from '@aws-sdk/credential-providers';
import { stringify } from 'smol-toml';
import { ConfigError, loadConfig, resolveConfig } from '../daemon/config/load.js';
import { startDaemon } from '../daemon/daemon.js';
import { startEmulator } from '../emulator/index.js';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { Pkcs11Signer } from '../daemon/keys/pkcs11/signer.js';
import { silentLogger } from '../daemon/logging/logger.js';
import { CertificateError, TokenCertificateSource, intermediatesFrom } from '../daemon/clouds/aws/rolesanywhere/certificates.js';
import { pemCertificates } from '../daemon/x509/pem.js';
import { awsRuntime } from '../daemon/clouds/aws/runtime.js';
import type { AwsCredentials } from '../daemon/clouds/aws/credentials.js';
import type { AwsRolesAnywhereProfileConfig } from '../daemon/clouds/aws/schema.js';
import { initCa, issueCertificate } from '../daemon/x509/ca.js';
import { buildCertificate } from '../daemon/x509/certificate-builder.js';
import { createCsr } from '../daemon/x509/csr.js';
import type { KeySigner } from '../daemon/keys/signer.js';
import { EmptyHome, cleanEnv, forgetAwsEnvironment, parseCredentials, runChild, type ClientCredentials } from './helpers/clients.js';
import { createSoftHsm, enclaveAddon, pkcs11Tool, softhsm2, type SoftHsm } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

forgetAwsEnvironment();

// Children import the very SDK package this test compiled against.
const PROVIDERS_URL = import.meta.resolve('@aws-sdk/credential-providers');
const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555`;
const RA_PROFILE = `arn:aws:rolesanywhere:${REGION}:111122223333:profile/66666666-7777-8888-9999-000000000000`;
const EDGE_ROLE = 'arn:aws:iam::111122223333:role/edge';
const FILE_ROLE = 'arn:aws:iam::111122223333:role/edge-file';
const KEY_ID = 'c0ffee01';

const raProfile = (extra: Record<string, unknown>): Record<string, unknown> => ({
  type: 'aws-rolesanywhere',
  trust_anchor_arn: TA,
  profile_arn: RA_PROFILE,
  role_arn: EDGE_ROLE,
  ...extra,
});

function configError(t: Test, data: Record<string, unknown>, pattern: RegExp, what: string): void {
  try {
    resolveConfig('/etc/credport/config.toml', data, { HOME: '/home/u' });
    t.fail(`${what}: expected a ConfigError`);
  } catch (err) {
    t.type(err, ConfigError, `${what}: a ConfigError`);
    t.match((err as ConfigError).problems.join('\n'), pattern, what);
  }
}

const pkcs11Key = {
  backend: 'pkcs11',
  module: '/usr/lib/softhsm/libsofthsm2.so',
  token_label: 'credport',
  key_label: 'device',
  pin_env: 'PIN',
};

t.test('config: certificate = "token" needs the pkcs11 key backend and no private_key', async (t) => {
  configError(
    t,
    { key: { backend: 'file' }, profiles: { edge: raProfile({ certificate: 'token' }) } },
    /profiles\.edge\.certificate: "token" .*needs \[key\] backend = "pkcs11" \(this config's key backend is "file"\)/,
    'file key backend',
  );
  configError(
    t,
    { key: { backend: 'secure-enclave' }, profiles: { edge: raProfile({ certificate: 'token' }) } },
    /profiles\.edge\.certificate: .*"secure-enclave"/,
    'secure-enclave key backend',
  );
  configError(
    t,
    { key: pkcs11Key, profiles: { edge: raProfile({ certificate: 'token', private_key: '/etc/credport/device.key' }) } },
    /profiles\.edge\.certificate: "token" .*cannot be used with private_key/,
    'with private_key',
  );

  const ok = resolveConfig(
    '/etc/credport/config.toml',
    { key: pkcs11Key, profiles: { edge: raProfile({ certificate: 'token', chain: 'intermediates.pem' }) } },
    { HOME: '/home/u' },
  );
  const edge = ok.profiles.get('edge') as AwsRolesAnywhereProfileConfig | undefined;
  t.equal(edge?.type === 'aws-rolesanywhere' ? edge.certificate : undefined, 'token', '"token" is not expanded as a path');
  t.equal(edge?.type === 'aws-rolesanywhere' ? edge.chain : undefined, '/etc/credport/intermediates.pem', 'chain stays a file');
  const file = resolveConfig(
    '/etc/credport/config.toml',
    { key: { backend: 'file' }, profiles: { edge: raProfile({ certificate: './token' }) } },
    { HOME: '/home/u' },
  );
  const fileEdge = file.profiles.get('edge') as AwsRolesAnywhereProfileConfig | undefined;
  t.equal(
    fileEdge?.type === 'aws-rolesanywhere' ? fileEdge.certificate : undefined,
    '/etc/credport/token',
    'a file named token is "./token"',
  );

  // A caller handing createProvider a key that is not on a token (not through the config check).
  const dir = mkdtempSync(join(tmpdir(), 'credport-token-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fileSigner: KeySigner = FileKeySigner.create(join(dir, 'key.pem'));
  t.equal(fileSigner.readCertificates, undefined, 'a file key has no certificates to read');
  // The daemon loads the Roles Anywhere module for a config that has such a profile; so does this caller.
  await awsRuntime.prepare?.(new Set(['aws-rolesanywhere']));
  t.throws(
    () =>
      awsRuntime.createProvider('edge', edge!, {
        signer: fileSigner,
        env: {},
        config: ok,
        tuning: {},
        source: () => () => Promise.reject(new Error('unused')),
        sourceUnattended: () => true,
      }),
    { name: 'ProviderError', code: 'InvalidConfiguration', message: /certificate = "token" .*the device key is a file key/ },
  );
});

// Root -> intermediate -> leaf, plus an older leaf for the same key and an unrelated self-signed one.
const now = Date.now();
const window = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 86_400_000) };
const rootKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const interKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const der = async (spec: Parameters<typeof buildCertificate>[0]): Promise<Uint8Array> =>
  new Uint8Array((await buildCertificate(spec)).rawData);
const rootDer = await der({
  subject: 'CN=Root',
  publicKey: rootKey.publicKey,
  issuer: { privateKey: rootKey.privateKey },
  ca: { pathLength: 1 },
  ...window,
});
const rootPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(rootDer).toString('base64')}\n-----END CERTIFICATE-----\n`;
const interDer = await der({
  subject: 'CN=Inter',
  publicKey: interKey.publicKey,
  issuer: { privateKey: rootKey.privateKey, certificatePem: rootPem },
  ca: { pathLength: 0 },
  ...window,
});
const interPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(interDer).toString('base64')}\n-----END CERTIFICATE-----\n`;
const leafDer = await der({
  subject: 'CN=leaf',
  publicKey: leafKey.publicKey,
  issuer: { privateKey: interKey.privateKey, certificatePem: interPem },
  ...window,
});
const oldLeafDer = await der({
  subject: 'CN=leaf (old)',
  publicKey: leafKey.publicKey,
  issuer: { privateKey: interKey.privateKey, certificatePem: interPem },
  ...window,
});
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const unrelatedDer = await der({
  subject: 'CN=Unrelated',
  publicKey: other.publicKey,
  issuer: { privateKey: other.privateKey },
  ca: { pathLength: 0 },
  ...window,
});

t.test('token certificate source: intermediates from the token, failures keep their code', async (t) => {
  t.same(
    intermediatesFrom(leafDer, [unrelatedDer, rootDer, oldLeafDer, interDer]),
    [interDer],
    'the issuer only: no root, no old leaf, nothing unrelated',
  );
  t.same(intermediatesFrom(leafDer, []), [], 'no candidates, no chain');

  let answer: () => Promise<Uint8Array[]> = async () => [leafDer, oldLeafDer, interDer, rootDer];
  const source = new TokenCertificateSource(() => answer(), 'token "test"');
  t.equal(source.known(), undefined, 'nothing known before the first read');
  const chain = await source.current();
  t.equal(chain.leaf.subject, 'CN=leaf');
  t.same(
    chain.chain.map((c) => c.subject),
    ['CN=Inter'],
  );
  t.equal(source.known(), chain, 'known() is the last read, without a token call');

  answer = async () => {
    throw new CertificateError(
      'reading the certificate from the token: no X.509 certificate with id 01 on the token',
      'CERTIFICATE_NOT_FOUND',
    );
  };
  await t.rejects(source.current(), { name: 'CertificateError', code: 'CERTIFICATE_NOT_FOUND' });
  t.equal(source.known(), undefined, 'a failed read drops the last certificate');
  answer = async () => [Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01])];
  await t.rejects(source.current(), {
    code: 'CertificateUnavailable',
    message: /the certificate on token "test" is not a valid X\.509 certificate/,
  });
  answer = async () => [];
  await t.rejects(source.current(), { code: 'CERTIFICATE_NOT_FOUND' });
});

const TOOLS = [softhsm2, pkcs11Tool, enclaveAddon];

interface Issued {
  der: Buffer;
  pem: string;
  serial: string;
}

t.test('SoftHSM2: the certificate next to the key, read by the signer and used by the daemon', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const hsm: SoftHsm = createSoftHsm();
  t.teardown(() => hsm.cleanup());
  const home = join(hsm.dir, 'home');
  mkdirSync(home);
  const pinFile = join(home, 'pin');
  writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
  const keyOptions = { module: hsm.module, tokenLabel: hsm.tokenLabel, keyLabel: 'device', keyId: KEY_ID, pin: { file: pinFile } };
  const signer = await Pkcs11Signer.create(keyOptions);
  t.teardown(() => signer.close());

  const caDir = join(home, 'ca');
  await initCa({ dir: caDir, subject: 'CN=Token test CA', days: 30 });
  let n = 0;
  /** `laterMs` moves the CA's clock forward, so that certificates issued within a second differ in notBefore. */
  const issue = async (subject: string, laterMs = 0): Promise<Issued> => {
    const csr = await createCsr(signer, { subject });
    const cert = await issueCertificate({ caDir, csrPem: csr.pem, days: 30, now: () => Date.now() + laterMs });
    const [first] = pemCertificates(cert.certificatePem);
    if (first === undefined) throw new Error('issueCertificate returned no certificate');
    return { der: Buffer.from(first), pem: cert.certificatePem, serial: cert.serialDecimal };
  };
  /** Writes a DER certificate onto the token the way the docs say: same CKA_ID as the key. */
  const writeToToken = (d: Buffer, label: string, id = KEY_ID): void => {
    const file = join(home, `cert-${n++}.der`);
    writeFileSync(file, d);
    hsm.pkcs11Tool(['--write-object', file, '--type', 'cert', '--id', id, '--label', label]);
  };
  const deleteFromToken = (label: string): void => {
    hsm.pkcs11Tool(['--delete-object', '--type', 'cert', '--label', label]);
  };

  const first = await issue('CN=token-device');

  await t.test("(a) readCertificates: the key's certificate, byte for byte, leaf first; re-opens like signing", async (t) => {
    await t.rejects(signer.readCertificates(), {
      name: 'KeyBackendError',
      code: 'CERTIFICATE_NOT_FOUND',
      message: new RegExp(
        `no X\\.509 certificate with id ${KEY_ID} or label "device" on token "credport"; .*pkcs11-tool --write-object cert\\.der --type cert --id ${KEY_ID}`,
      ),
    });
    // The CA certificate under the same id first, so that the token's own order puts it before the leaf.
    const caDer = Buffer.from(pemCertificates(readFileSync(join(caDir, 'ca.pem'), 'utf8'))[0] ?? []);
    writeToToken(caDer, 'ca');
    writeToToken(first.der, 'device');
    const certs = await signer.readCertificates();
    t.equal(certs.length, 2, "both certificates with the key's id");
    t.same(Buffer.from(certs[0] ?? []), first.der, "the leaf (the key's certificate) first, byte-equal to what was written");
    t.same(Buffer.from(certs[1] ?? []), caDer, 'then the rest, as chain candidates');
    t.same(
      (await signer.readCertificates({ label: 'ca' })).map((c) => Buffer.from(c)),
      [caDer],
      'an explicit selector',
    );
    deleteFromToken('ca');
    t.same(
      (await signer.readCertificates()).map((c) => Buffer.from(c)),
      [first.der],
      'the CA certificate is gone again',
    );

    // By label when no certificate has the key's id.
    deleteFromToken('device');
    writeToToken(first.der, 'device', 'ee');
    t.same(
      (await signer.readCertificates()).map((c) => Buffer.from(c)),
      [first.der],
      "found by the key's label",
    );
    deleteFromToken('device');
    writeToToken(first.der, 'device');

    // The token pulled out and put back: the same signer re-opens and reads again.
    const putBack = hsm.removeToken();
    try {
      await signer.readCertificates();
      t.fail('expected a failure with the token away');
    } catch (err) {
      t.type(err, KeyBackendError);
      t.match((err as KeyBackendError).code, /^(SESSION_INVALID|TOKEN_NOT_PRESENT)$/, 'a typed error while it is away');
    }
    putBack();
    const reopensBefore = signer.reopens;
    t.same(
      (await signer.readCertificates()).map((c) => Buffer.from(c)),
      [first.der],
      'read again once it is back',
    );
    t.equal(signer.reopens, reopensBefore + 1, 'after one re-open');
  });

  // The daemon: its [key] on the token, `edge` with the certificate on the token (default profile, so
  // IMDS serves it), `edge-file` with the same certificate from a file.
  const issuerDir = join(home, 'issuer');
  mkdirSync(issuerDir);
  const emulator = await startEmulator({ issuerDir });
  t.teardown(() => emulator.close());
  emulator.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, 'ca.pem'), 'utf8') });
  emulator.createRolesAnywhereProfile({ arn: RA_PROFILE, roleArns: [EDGE_ROLE, FILE_ROLE] });
  emulator.createRole({ arn: EDGE_ROLE, trust: { rolesAnywhere: true } });
  emulator.createRole({ arn: FILE_ROLE, trust: { rolesAnywhere: true } });
  const certFile = join(home, 'device.pem');
  writeFileSync(certFile, first.pem);
  const configFile = join(home, 'config.toml');
  writeFileSync(
    configFile,
    stringify({
      daemon: { listen: '127.0.0.1:0', token_file: join(home, 'token'), lock_file: join(home, 'daemon.pid') },
      key: { backend: 'pkcs11', module: hsm.module, token_label: hsm.tokenLabel, key_label: 'device', key_id: KEY_ID, pin_file: pinFile },
      profiles: {
        edge: raProfile({ certificate: 'token', endpoint: emulator.rolesAnywhereEndpoint, default: true }),
        'edge-file': raProfile({ certificate: certFile, role_arn: FILE_ROLE, endpoint: emulator.rolesAnywhereEndpoint }),
      },
    }),
  );
  const config = loadConfig(configFile, { HOME: home });
  const started = Date.now();
  const daemon = await startDaemon({ config, logger: silentLogger(), tuning: { maxAttempts: 1 } });
  t.teardown(() => daemon.close());
  const token = readFileSync(config.daemon.tokenFile, 'utf8');
  const ecs = (profile: string) =>
    fromHttp({ awsContainerCredentialsFullUri: `${daemon.url}/v1/credentials/${profile}`, awsContainerAuthorizationToken: token })();
  const health = async () =>
    (await (await fetch(`${daemon.url}/health`)).json()) as {
      profiles: Record<
        string,
        { state: string; lastError: { code: string; message: string } | null; certificate?: { serial: string; subject: string } }
      >;
    };

  await t.test('(b) the real SDK gets Roles Anywhere credentials signed with the token certificate', async (t) => {
    const c = await ecs('edge');
    const issued = emulator.issued(c.accessKeyId);
    t.equal(issued?.roleArn, EDGE_ROLE, 'fromHttp: credentials for the edge role');
    t.equal(issued?.certificateSerial, first.serial, 'signed with the certificate read from the token');
    t.equal(c.secretAccessKey, issued?.secretAccessKey);
    t.equal(c.sessionToken, issued?.sessionToken);
    t.equal(c.expiration?.getTime(), issued?.expiration.getTime());

    const home2 = new EmptyHome();
    t.teardown(() => home2.remove());
    const script = `
      const m = await import(${JSON.stringify(PROVIDERS_URL)});
      const c = await m.fromInstanceMetadata()();
      process.stdout.write(JSON.stringify({ accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken,
        expiration: c.expiration ? c.expiration.toISOString() : undefined }));
    `;
    const child = await runChild(
      process.execPath,
      ['--input-type=module', '-e', script],
      cleanEnv(home2, { AWS_EC2_METADATA_SERVICE_ENDPOINT: `${daemon.url}/` }),
      home2.dir,
    );
    const got: ClientCredentials | Error = parseCredentials(child);
    if (got instanceof Error) {
      t.fail(`fromInstanceMetadata in a child process: ${got.message}`);
    } else {
      const viaImds = emulator.issued(got.accessKeyId);
      t.equal(viaImds?.roleArn, EDGE_ROLE, 'fromInstanceMetadata (child process): the default profile, on the token certificate');
      t.equal(got.secretAccessKey, viaImds?.secretAccessKey);
      t.equal(got.sessionToken, viaImds?.sessionToken);
      t.equal(viaImds?.certificateSerial, first.serial);
    }
    const h = await health();
    t.equal(h.profiles.edge?.state, 'ok');
    t.match(h.profiles.edge?.certificate, { subject: 'CN=token-device', serial: first.serial }, '/health shows the token certificate');
    t.equal(emulator.issued((await ecs('edge-file')).accessKeyId)?.roleArn, FILE_ROLE, 'the file profile serves next to it');
  });

  await t.test('(c) a certificate replaced on the token is used at the next refresh, without a restart', async (t) => {
    const renewed = await issue('CN=token-device');
    t.not(renewed.serial, first.serial);
    deleteFromToken('device');
    writeToToken(renewed.der, 'device');
    await daemon.scheduler.get('edge')!.refreshNow();
    const c = await ecs('edge');
    t.equal(
      emulator.issued(c.accessKeyId)?.certificateSerial,
      renewed.serial,
      'the next CreateSession is signed with the renewed certificate',
    );
    t.equal((await health()).profiles.edge?.certificate?.serial, renewed.serial, '/health follows the token');

    // Renewal by writing the new one before deleting the old: the newest valid one is the leaf.
    const third = await issue('CN=token-device', 60_000);
    writeToToken(third.der, 'device-next');
    await daemon.scheduler.get('edge')!.refreshNow();
    t.equal(
      emulator.issued((await ecs('edge')).accessKeyId)?.certificateSerial,
      third.serial,
      'two certificates for the key: the newer one signs',
    );
    deleteFromToken('device');
  });

  await t.test('(d) no certificate on the token: CERTIFICATE_NOT_FOUND in /health, the other profile keeps serving', async (t) => {
    const before = await ecs('edge');
    deleteFromToken('device-next');
    await t.rejects(daemon.scheduler.get('edge')!.refreshNow(), { code: 'CERTIFICATE_NOT_FOUND' });
    const h = await health();
    t.equal(h.profiles.edge?.lastError?.code, 'CERTIFICATE_NOT_FOUND');
    t.match(
      h.profiles.edge?.lastError?.message,
      new RegExp(
        `no X\\.509 certificate with id ${KEY_ID} or label "device" on token "credport"; store the key's certificate there with pkcs11-tool --write-object`,
      ),
      'the message says what is missing and how to put it there',
    );
    t.equal(h.profiles.edge?.state, 'failing', 'still serving the last good credentials');
    t.equal(h.profiles.edge?.certificate, undefined, 'no stale certificate in /health');
    t.equal((await ecs('edge')).accessKeyId, before.accessKeyId, 'the last good credentials are still served');

    const fileBefore = emulator.stats.rolesAnywhereCalls;
    const fresh = (await daemon.scheduler.get('edge-file')!.refreshNow()) as AwsCredentials;
    t.equal(emulator.stats.rolesAnywhereCalls, fileBefore + 1, 'the file profile refreshes');
    t.equal(emulator.issued(fresh.accessKeyId)?.roleArn, FILE_ROLE);
    t.equal((await health()).profiles['edge-file']?.lastError, null, 'and has no error');

    // Put back: served again at the next refresh.
    writeToToken(first.der, 'device');
    await daemon.scheduler.get('edge')!.refreshNow();
    t.equal((await health()).profiles.edge?.state, 'ok', 'recovers once the certificate is back');
  });
  t.comment(`daemon part took ${Date.now() - started} ms`);
});
