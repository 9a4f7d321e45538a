/**
 * Renewal with the device key on a PKCS#11 token (SoftHSM2): CSRs are signed by the key inside the
 * token, by each method. The profile whose certificate lives on the token gets the renewed certificate
 * written back there (the addon's storeCertificate: a new CKO_CERTIFICATE with the key's CKA_ID, the
 * old one destroyed); the others get their files replaced. Twenty minutes of a fake clock shared by
 * the daemon and the emulator, certificates living ten: credentials every minute, CreateSession moving
 * to each new serial, no failed request.
 *
 * Its own file: SoftHSM is initialised once per process with its configuration.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { stringify } from 'smol-toml';
import { loadConfig } from '../daemon/config/load.js';
import { startDaemon } from '../daemon/daemon.js';
import { Pkcs11Signer } from '../daemon/keys/pkcs11/signer.js';
import { silentLogger } from '../daemon/logging/logger.js';
import { CA_CERT_FILE, CA_KEY_FILE, initCa, issueCertificate } from '../daemon/x509/ca.js';
import { createCsr } from '../daemon/x509/csr.js';
import { describeCertificate } from '../daemon/x509/inspect.js';
import { pemCertificates } from '../daemon/x509/pem.js';
import { startEmulator } from '../emulator/index.js';
import { FakeClock } from './helpers/fake-clock.js';
import { createSoftHsm, enclaveAddon, pkcs11Tool, softhsm2 } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555`;
const RA_PROFILE = `arn:aws:rolesanywhere:${REGION}:111122223333:profile/66666666-7777-8888-9999-000000000000`;
const PCA = `arn:aws:acm-pca:${REGION}:111122223333:certificate-authority/12345678-1234-1234-1234-123456789012`;
const ROLE = 'arn:aws:iam::111122223333:role/edge';
const KEY_ID = 'c0ffee02';
const TEN_MINUTES = 10 * 60_000;
const DIST_CA = fileURLToPath(new URL('../daemon/x509/ca.js', import.meta.url));
const TOOLS = [softhsm2, pkcs11Tool, enclaveAddon];
const PROFILES = ['token', 'pca', 'cmd'] as const;

t.test('SoftHSM2: renewal by each method, the token one written back to the token', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const clock = new FakeClock(Date.now());
  const hsm = createSoftHsm();
  t.teardown(() => hsm.cleanup());
  const home = join(hsm.dir, 'home');
  mkdirSync(home);
  const pinFile = join(home, 'pin');
  writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
  const signer = await Pkcs11Signer.create({
    module: hsm.module,
    tokenLabel: hsm.tokenLabel,
    keyLabel: 'device',
    keyId: KEY_ID,
    pin: { file: pinFile },
  });
  const caDir = join(home, 'ca');
  await initCa({ dir: caDir, subject: 'CN=Token Renewal CA', days: 30, now: () => clock.now() - 60_000 });
  const issue = async (subject: string) => {
    const csr = await createCsr(signer, { subject });
    return issueCertificate({ caDir, csrPem: csr.pem, days: 1, validityMs: TEN_MINUTES, now: () => clock.now() });
  };
  const onToken = await issue('CN=edge-token');
  const derFile = join(home, 'first.der');
  writeFileSync(derFile, pemCertificates(onToken.certificatePem)[0]!);
  hsm.pkcs11Tool(['--write-object', derFile, '--type', 'cert', '--id', KEY_ID, '--label', 'device']);
  const pcaCert = join(home, 'pca.pem');
  writeFileSync(pcaCert, (await issue('CN=edge-pca')).certificatePem);
  const cmdCert = join(home, 'cmd.pem');
  writeFileSync(cmdCert, (await issue('CN=edge-cmd')).certificatePem);
  await signer.close();

  const nowFile = join(home, 'now.txt');
  writeFileSync(nowFile, String(clock.now()));
  const script = join(home, 'sign.mjs');
  writeFileSync(
    script,
    `import { readFileSync } from 'node:fs';
import { issueCertificate } from ${JSON.stringify(DIST_CA)};
const csrPem = readFileSync(0, 'utf8');
const now = Number(readFileSync(${JSON.stringify(nowFile)}, 'utf8'));
const r = await issueCertificate({ caDir: ${JSON.stringify(caDir)}, csrPem, days: 1, validityMs: ${TEN_MINUTES}, now: () => now });
process.stdout.write(r.certificatePem);
`,
  );

  const emulator = await startEmulator({ issuerDir: home, now: () => clock.now() });
  t.teardown(() => emulator.close());
  emulator.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, CA_CERT_FILE), 'utf8') });
  emulator.createRolesAnywhereProfile({ arn: RA_PROFILE, roleArns: [ROLE] });
  emulator.createRole({ arn: ROLE, trust: { rolesAnywhere: true } });
  emulator.createPrivateCertificateAuthority({
    arn: PCA,
    certificatePem: readFileSync(join(caDir, CA_CERT_FILE), 'utf8'),
    privateKeyPem: readFileSync(join(caDir, CA_KEY_FILE), 'utf8'),
    allowedRoleArns: [ROLE],
  });
  const ra = (extra: Record<string, unknown>) => ({
    type: 'aws-rolesanywhere',
    trust_anchor_arn: TA,
    profile_arn: RA_PROFILE,
    role_arn: ROLE,
    endpoint: emulator.rolesAnywhereEndpoint,
    duration_seconds: 900,
    ...extra,
  });
  const caPem = join(caDir, CA_CERT_FILE);
  const configFile = join(home, 'config.toml');
  writeFileSync(
    configFile,
    stringify({
      daemon: { listen: '127.0.0.1:0', token_file: join(home, 'token'), lock_file: join(home, 'daemon.pid') },
      key: { backend: 'pkcs11', module: hsm.module, token_label: hsm.tokenLabel, key_label: 'device', key_id: KEY_ID, pin_file: pinFile },
      profiles: {
        token: ra({ certificate: 'token', default: true, renewal: { method: 'credport-ca', ca_dir: caDir } }),
        pca: ra({
          certificate: pcaCert,
          renewal: {
            method: 'aws-private-ca',
            certificate_authority_arn: PCA,
            trust_anchor_certificate: caPem,
            private_ca_endpoint: emulator.url,
          },
        }),
        cmd: ra({
          certificate: cmdCert,
          renewal: { method: 'command', command: [process.execPath, script], trust_anchor_certificate: caPem },
        }),
      },
    }),
  );
  const config = loadConfig(configFile, { HOME: home });
  const daemon = await startDaemon({ config, logger: silentLogger(), clock, tuning: { maxAttempts: 1 } });
  t.teardown(() => daemon.close());
  const token = readFileSync(config.daemon.tokenFile, 'utf8');
  type H = {
    profiles: Record<
      string,
      {
        state: string;
        refreshing: boolean;
        certificate?: { serial: string; renewal?: { state: string; consecutiveFailures: number; lastError: unknown } };
      }
    >;
  };
  const health = async (): Promise<H> => (await (await fetch(`${daemon.url}/health`)).json()) as H;
  const settled = async (what: string): Promise<H> => {
    for (let i = 0; i < 500; i++) {
      const h = await health();
      if (PROFILES.every((p) => h.profiles[p] && !h.profiles[p].refreshing && h.profiles[p].certificate?.renewal?.state !== 'renewing'))
        return h;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out: ${what}`);
  };
  for (let i = 0; i < 500; i++) {
    const h = await settled('start');
    if (PROFILES.every((p) => h.profiles[p]?.state === 'ok')) break;
    await new Promise((r) => setTimeout(r, 20));
  }

  const failures: string[] = [];
  for (let minute = 1; minute <= 20; minute++) {
    writeFileSync(nowFile, String(clock.now() + 60_000));
    await clock.advance(60_000);
    await settled(`minute ${minute}`);
    for (const p of PROFILES) {
      const res = await fetch(`${daemon.url}/v1/credentials/${p}`, { headers: { authorization: token } });
      if (res.status !== 200) failures.push(`minute ${minute} ${p}: HTTP ${res.status} ${await res.text()}`);
      else await res.arrayBuffer();
    }
  }
  t.same(failures, [], 'credentials every minute for every profile');
  t.equal(emulator.stats.rolesAnywhereFailures, 0, 'no CreateSession failed');
  const h = await health();
  const sessions = emulator.issuedInOrder().filter((c) => c.via === 'CreateSession');
  for (const p of PROFILES) {
    t.equal(h.profiles[p]?.certificate?.renewal?.consecutiveFailures, 0, `${p}: no failed renewal`);
    const cn = `edge-${p}`;
    const serials = sessions
      .filter((c) => c.subject.includes(`CN=${cn}`))
      .map((c) => c.certificateSerial)
      .filter((s, i, all) => s !== all[i - 1]);
    // Sessions come every 7.5 minutes and certificates every 6 or 7: at least one switch in 20 minutes.
    t.ok(serials.length >= 2, `${p}: CreateSession moved through ${serials.length} certificates`);
    t.equal(new Set(serials).size, serials.length, `${p}: never back to an old certificate`);
  }
  // The token holds the renewed certificate, and only it, next to the key.
  const check = await Pkcs11Signer.open({
    module: hsm.module,
    tokenLabel: hsm.tokenLabel,
    keyLabel: 'device',
    keyId: KEY_ID,
    pin: { file: pinFile },
  });
  t.teardown(() => check.close());
  const onTokenNow = await check.readCertificates();
  t.equal(onTokenNow.length, 1, 'the old certificate was removed from the token');
  const d = describeCertificate(onTokenNow[0]!, { jwk: { ...check.publicJwk() } });
  t.equal(d.serialDecimal, h.profiles.token?.certificate?.serial, '/health shows the certificate on the token');
  t.not(d.serialDecimal, onToken.serialDecimal, 'renewed');
  t.ok(d.matchesKey, 'for the key on the token');
  t.ok(d.notAfter.getTime() > clock.now());
});
