/**
 * Roles Anywhere through the whole product: a CA made with `credport ca`, a
 * device certificate issued from `credport cert csr` and installed with
 * `credport cert import`, then the daemon serving aws-rolesanywhere (device
 * key, and a separate RSA key file), aws-assume-role chained onto it, and
 * aws-oidc side by side, to the real JS SDK on both endpoints. Failures the
 * emulator detects reach /health with their cause.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fromHttp } from '@aws-sdk/credential-providers';
import { fromKeyFile } from '../daemon/x509/signing-key.js';
import { initCa, issueCertificate } from '../daemon/x509/ca.js';
import { createCsr } from '../daemon/x509/csr.js';
import { renderStatus } from '../daemon/cli/commands/status.js';
import type { HealthReport } from '../daemon/server/health-report.js';
import { runCliAsync } from './helpers/cli.js';
import { imdsCredentials } from './helpers/clients.js';
import { ACCOUNT, roleArnFor, startStack, type Stack } from './helpers/stack.js';

const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:trust-anchor/11111111-2222-3333-4444-555555555555`;
const PROFILE = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:profile/66666666-7777-8888-9999-000000000000`;
const EDGE_ROLE = roleArnFor('edge');
const RSA_ROLE = roleArnFor('edge-rsa');
const CROSS_ROLE = 'arn:aws:iam::444455556666:role/cross-account';

interface Health {
  status: string;
  warnings: string[];
  profiles: Record<
    string,
    {
      state: string;
      lastError: { code: string; message: string } | null;
      certificate?: { daysLeft: number; serial: string; expiresSoon: boolean };
    }
  >;
}

async function health(stack: Stack): Promise<Health> {
  return (await (await fetch(`${stack.daemon!.url}/health`)).json()) as Health;
}

t.test('CA, CSR, import, then three profile types in one daemon', async (t) => {
  // A stack without a daemon first, to run the CLI against its config and key.
  const pre = await startStack({ startDaemon: false });
  t.teardown(() => pre.close());
  const env = { CREDPORT_CONFIG: pre.configFile };
  const caDir = join(pre.dir, 'ca');
  const ca = await runCliAsync(['ca', 'init', '--dir', caDir, '--subject', 'CN=Test Fleet CA, O=credport tests'], env);
  t.equal(ca.status, 0, ca.stderr);
  const csrPath = join(pre.dir, 'device.csr');
  const csr = await runCliAsync(['cert', 'csr', '--subject', 'CN=edge-17, O=credport tests', '--out', csrPath], env);
  t.equal(csr.status, 0, csr.stderr);
  t.match(readFileSync(csrPath, 'utf8'), /^-----BEGIN CERTIFICATE REQUEST-----/);
  const certPath = join(pre.dir, 'issued.pem');
  const issue = await runCliAsync(['ca', 'issue', '--dir', caDir, '--csr', csrPath, '--days', '20', '--out', certPath], env);
  t.equal(issue.status, 0, issue.stderr);
  const installDir = join(pre.dir, 'installed');
  const imp = await runCliAsync(['cert', 'import', certPath, '--dest', installDir], env);
  t.equal(imp.status, 0, imp.stderr);
  t.match(imp.stdout, /subject:\s+CN=edge-17, O=credport tests/);
  t.match(imp.stdout, /the device key/);
  // A certificate for another key is refused by import.
  await initCa({ dir: join(pre.dir, 'other-ca'), subject: 'CN=Other CA', days: 10 });
  const foreignKey = join(pre.dir, 'foreign.key');
  writeFileSync(foreignKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  const foreignCsr = await createCsr(fromKeyFile(foreignKey), { subject: 'CN=someone else' });
  const foreign = await issueCertificate({
    caDir: join(pre.dir, 'other-ca'),
    csrPem: foreignCsr.pem,
    days: 10,
    outPath: join(pre.dir, 'foreign.pem'),
  });
  const refused = await runCliAsync(['cert', 'import', foreign.path!, '--dest', installDir], env);
  t.equal(refused.status, 1);
  t.match(refused.stderr, /does not certify the device key/);

  // An RSA key file with its own certificate from the same CA.
  const rsaKey = join(pre.dir, 'rsa.key');
  writeFileSync(rsaKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs1' }), {
    mode: 0o600,
  });
  const rsaCsr = await createCsr(fromKeyFile(rsaKey), { subject: 'CN=edge-rsa' });
  const rsaCert = await issueCertificate({ caDir, csrPem: rsaCsr.pem, days: 365, outPath: join(pre.dir, 'rsa.pem') });

  const stack = await startStack({
    profiles: {
      default: {},
      edge: {
        type: 'aws-rolesanywhere',
        certificate: join(installDir, 'device.pem'),
        trust_anchor_arn: TA,
        profile_arn: PROFILE,
        role_arn: EDGE_ROLE,
        endpoint: 'EMULATOR',
      },
      'edge-rsa': {
        type: 'aws-rolesanywhere',
        certificate: rsaCert.path!,
        private_key: rsaKey,
        trust_anchor_arn: TA,
        profile_arn: PROFILE,
        role_arn: RSA_ROLE,
        endpoint: 'EMULATOR',
      },
      cross: { type: 'aws-assume-role', source_profile: 'edge', role_arn: CROSS_ROLE, sts_endpoint: 'EMULATOR-STS' },
    },
    daemon: { certificate_warning_days: 30 },
    keyFrom: pre,
    beforeStart: (e) => {
      e.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, 'ca.pem'), 'utf8') });
      e.createRolesAnywhereProfile({ arn: PROFILE, roleArns: [EDGE_ROLE, RSA_ROLE] });
      e.createRole({
        arn: EDGE_ROLE,
        trust: { rolesAnywhere: true, rolesAnywhereConditions: { StringEquals: { 'aws:PrincipalTag/x509Subject/CN': 'edge-17' } } },
      });
      e.createRole({ arn: RSA_ROLE, trust: { rolesAnywhere: true } });
      e.createRole({ arn: CROSS_ROLE, trust: { principalArns: [EDGE_ROLE] } });
    },
  });
  t.teardown(() => stack.close());
  const base = stack.daemon!.url;
  const token = stack.token();

  for (const [profile, role] of [
    ['edge', EDGE_ROLE],
    ['edge-rsa', RSA_ROLE],
    ['cross', CROSS_ROLE],
    ['default', roleArnFor('role-default')],
  ] as const) {
    const creds = await fromHttp({
      awsContainerCredentialsFullUri: `${base}/v1/credentials/${profile}`,
      awsContainerAuthorizationToken: token,
    })();
    const issued = stack.emulator.issued(creds.accessKeyId);
    t.equal(issued?.roleArn, role, `${profile}: the real SDK got credentials for ${role}`);
    t.equal(creds.sessionToken, issued?.sessionToken);
  }
  t.equal(
    stack.emulator.issued(
      (await fromHttp({ awsContainerCredentialsFullUri: `${base}/v1/credentials/cross`, awsContainerAuthorizationToken: token })())
        .accessKeyId,
    )?.via,
    'AssumeRole',
  );

  const h = await health(stack);
  t.equal(h.status, 'ok');
  t.equal(h.profiles.edge?.certificate?.expiresSoon, true, '20-day certificate: inside the 30-day window');
  t.match(h.warnings.join('\n'), /profile edge: certificate .*CN=edge-17.* expires in (19|20) day/);
  t.notOk(h.profiles['edge-rsa']?.certificate?.expiresSoon, 'a one-year certificate is not flagged');
  // The in-process daemon listens on port 0, which the config cannot name; render what status prints.
  t.match(renderStatus(h as unknown as HealthReport, Date.now()), /warning: profile edge: certificate/);
  const doctor = await runCliAsync(['doctor'], { CREDPORT_CONFIG: stack.configFile });
  t.match(
    doctor.stdout,
    /^\[warn\] certificate profile edge: CN=edge-17.* expires in (19|20) day\(s\)\n\s+fix: renew it now/m,
    'doctor warns about the expiring certificate',
  );
  t.match(doctor.stdout, /^\[ok {2}\] certificate profile edge-rsa: /m);
  const show = await runCliAsync(['cert', 'show'], { CREDPORT_CONFIG: stack.configFile });
  t.match(show.stdout, /profile edge: .*device\.pem\n\s+subject:\s+CN=edge-17/);

  // Tamper: a certificate from a CA the trust anchor does not know, swapped in on disk. The provider
  // re-reads it; the emulator refuses the chain; /health carries the cause; the old credentials stay served.
  const before = await fromHttp({
    awsContainerCredentialsFullUri: `${base}/v1/credentials/edge-rsa`,
    awsContainerAuthorizationToken: token,
  })();
  const otherCsr = await createCsr(fromKeyFile(rsaKey), { subject: 'CN=edge-rsa' });
  const wrongCa = await issueCertificate({ caDir: join(pre.dir, 'other-ca'), csrPem: otherCsr.pem, days: 365 });
  writeFileSync(rsaCert.path!, wrongCa.certificatePem);
  const refresh = stack.daemon!.scheduler.get('edge-rsa')!;
  await refresh.refreshNow().catch(() => undefined);
  const after = await health(stack);
  t.equal(after.profiles['edge-rsa']?.state, 'failing', 'serving the last good credentials');
  t.equal(after.profiles['edge-rsa']?.lastError?.code, 'AccessDeniedException');
  t.match(after.profiles['edge-rsa']?.lastError?.message ?? '', /trust anchor|chain|certificate/i, 'the cause is named');
  const still = await fromHttp({
    awsContainerCredentialsFullUri: `${base}/v1/credentials/edge-rsa`,
    awsContainerAuthorizationToken: token,
  })();
  t.equal(still.accessKeyId, before.accessKeyId);
});

t.test('IMDS serves a Roles Anywhere default profile', async (t) => {
  const pre = await startStack({ startDaemon: false });
  t.teardown(() => pre.close());
  const caDir = join(pre.dir, 'ca');
  mkdirSync(caDir);
  await initCa({ dir: join(caDir, 'x'), subject: 'CN=CA', days: 30 });
  const csr = await createCsr(pre.signer);
  const cert = await issueCertificate({ caDir: join(caDir, 'x'), csrPem: csr.pem, days: 200, outPath: join(pre.dir, 'device.pem') });
  const stack = await startStack({
    profiles: {
      edge: {
        type: 'aws-rolesanywhere',
        certificate: cert.path!,
        trust_anchor_arn: TA,
        profile_arn: PROFILE,
        role_arn: EDGE_ROLE,
        endpoint: 'EMULATOR',
      },
    },
    keyFrom: pre,
    beforeStart: (e) => {
      e.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, 'x', 'ca.pem'), 'utf8') });
      e.createRolesAnywhereProfile({ arn: PROFILE, roleArns: [EDGE_ROLE] });
      e.createRole({ arn: EDGE_ROLE, trust: { rolesAnywhere: true } });
    },
  });
  t.teardown(() => stack.close());
  const r = await imdsCredentials(stack.daemon!.url, 'edge');
  t.equal(r.status, 200);
  t.equal(stack.emulator.issued(String(r.body.AccessKeyId))?.roleArn, EDGE_ROLE);
  const region = await fetch(`${stack.daemon!.url}/latest/meta-data/placement/region`, {
    headers: {
      'x-aws-ec2-metadata-token': await (
        await fetch(`${stack.daemon!.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })
      ).text(),
    },
  });
  t.equal(await region.text(), REGION, "the trust anchor's region");
});
