/**
 * Certificates that renew themselves, and revocation. A device certificate living ten minutes, on the
 * device's file key, is renewed by each method (the built-in CA, a command, ACM Private CA in the
 * emulator, signed with the profile's own credentials) while the daemon serves credentials for an hour
 * of a fake clock shared by the daemon and the emulator: every minute a client gets credentials, the
 * emulator sees CreateSession move to each new serial, and no CreateSession fails. Renewal failures
 * (CA down, a certificate for another key, an expired chain, a command that hangs or prints garbage)
 * keep the old certificate and reach /health. A certificate revoked with `credport ca revoke`, whose
 * CRL from `credport ca crl` is imported and enabled in the emulator's trust anchor, is refused with
 * AccessDeniedException, and /health shows it while the last good credentials are still served.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CA_CERT_FILE, CA_KEY_FILE, initCa, issueCertificate } from '../daemon/x509/ca.js';
import { buildCertificate } from '../daemon/x509/certificate-builder.js';
import { createCsr } from '../daemon/x509/csr.js';
import { issueCrl } from '../daemon/x509/crl.js';
import { fromKeyFile, fromKeySigner } from '../daemon/x509/signing-key.js';
import { describeCertificate } from '../daemon/x509/inspect.js';
import { checkRenewedChain } from '../daemon/clouds/aws/rolesanywhere/renewal/check-renewed.js';
import { commandIssuer } from '../daemon/clouds/aws/rolesanywhere/renewal/issue-command.js';
import { renewalDueAt, retryDelayMs } from '../daemon/clouds/aws/rolesanywhere/renewal/schedule.js';
import { pemCertificates } from '../daemon/x509/pem.js';
import { runCliAsync } from './helpers/cli.js';
import { renderStatus } from '../daemon/cli/commands/status.js';
import { certificateChecks } from '../daemon/clouds/aws/cli.js';
import type { HealthReport } from '../daemon/server/health-report.js';
import { FakeClock } from './helpers/fake-clock.js';
import { ACCOUNT, roleArnFor, startStack, type Stack } from './helpers/stack.js';

const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:trust-anchor/11111111-2222-3333-4444-555555555555`;
const RA_PROFILE = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:profile/66666666-7777-8888-9999-000000000000`;
const PCA = `arn:aws:acm-pca:${REGION}:${ACCOUNT}:certificate-authority/12345678-1234-1234-1234-123456789012`;
const ROLE = roleArnFor('edge');
const TEN_MINUTES = 10 * 60_000;
const DIST_CA = fileURLToPath(new URL('../daemon/x509/ca.js', import.meta.url));

interface RenewalHealth {
  method: string;
  state: string;
  nextAttempt: string | null;
  lastRenewed: string | null;
  lastError: { code: string; message: string } | null;
  consecutiveFailures: number;
}
interface Health {
  status: string;
  warnings: string[];
  profiles: Record<
    string,
    {
      state: string;
      refreshing: boolean;
      lastRefresh: string | null;
      lastError: { code: string; message: string } | null;
      certificate?: { serial: string; secondsLeft: number; renewal?: RenewalHealth };
    }
  >;
}

async function health(stack: Stack): Promise<Health> {
  return (await (await fetch(`${stack.daemon!.url}/health`)).json()) as Health;
}

/** Polls (real time, bounded) until `ok` holds for the health document. */
async function until(stack: Stack, ok: (h: Health) => boolean, what: string): Promise<Health> {
  for (let i = 0; i < 500; i++) {
    const h = await health(stack);
    if (ok(h)) return h;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await health(stack))}`);
}

const quiet = (h: Health): boolean => {
  const p = h.profiles.edge;
  return p !== undefined && !p.refreshing && p.certificate?.renewal?.state !== 'renewing';
};

/**
 * Moves the fake clock in steps shorter than any deadline the daemon keeps on it (the refresh's attempt
 * deadline is 45 s), each followed by a quiet moment. A refresh or renewal a step starts then finishes in
 * real time before the clock can pass its deadline: one jump of minutes would abandon a call the emulator
 * had not answered yet on a slow machine, and the test would see UpstreamTimeout instead of the answer.
 */
async function advance(stack: Stack, clock: FakeClock, ms: number): Promise<void> {
  const end = clock.now() + ms;
  while (clock.now() < end) {
    await clock.advance(Math.min(20_000, end - clock.now()));
    await until(stack, quiet, 'a quiet moment');
  }
}

async function credentials(stack: Stack): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`${stack.daemon!.url}/v1/credentials/edge`, { headers: { authorization: stack.token() } });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/** The CA, and a device certificate for the stack's key that lives `lifetimeMs` from the clock's now. */
async function setup(clock: FakeClock, lifetimeMs = TEN_MINUTES) {
  const pre = await startStack({ startDaemon: false });
  const caDir = join(pre.dir, 'ca');
  await initCa({ dir: caDir, subject: 'CN=Renewal Test CA, O=credport tests', days: 30, now: () => clock.now() - 60_000 });
  const csr = await createCsr(pre.signer, { subject: 'CN=edge-renew, O=credport tests' });
  const certPath = join(pre.dir, 'device.pem');
  await issueCertificate({ caDir, csrPem: csr.pem, days: 1, validityMs: lifetimeMs, now: () => clock.now(), outPath: certPath });
  return { pre, caDir, certPath, caPem: join(caDir, CA_CERT_FILE) };
}

function emulatorSetup(caDir: string, withPca: boolean) {
  return (e: Stack['emulator']) => {
    e.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, CA_CERT_FILE), 'utf8') });
    e.createRolesAnywhereProfile({ arn: RA_PROFILE, roleArns: [ROLE], durationSeconds: 3600 });
    e.createRole({ arn: ROLE, trust: { rolesAnywhere: true } });
    if (withPca) {
      e.createPrivateCertificateAuthority({
        arn: PCA,
        certificatePem: readFileSync(join(caDir, CA_CERT_FILE), 'utf8'),
        privateKeyPem: readFileSync(join(caDir, CA_KEY_FILE), 'utf8'),
        allowedRoleArns: [ROLE],
      });
    }
  };
}

function profile(certPath: string, renewal?: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'aws-rolesanywhere',
    certificate: certPath,
    trust_anchor_arn: TA,
    profile_arn: RA_PROFILE,
    role_arn: ROLE,
    endpoint: 'EMULATOR',
    duration_seconds: 900,
    default: true,
    ...(renewal ? { renewal } : {}),
  };
}

/** A signing program for method = "command": issues from the CA with the time the test writes to a file. */
function signerScript(dir: string, caDir: string): { argv: string[]; nowFile: string } {
  const script = join(dir, 'sign.mjs');
  const nowFile = join(dir, 'now.txt');
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
  return { argv: [process.execPath, script], nowFile };
}

t.test('schedule: renewal at 2/3 of the lifetime; retries shorter than what is left', async (t) => {
  const nb = new Date(Date.UTC(2026, 0, 1));
  const na = new Date(nb.getTime() + 9 * 60_000);
  t.equal(renewalDueAt(nb, na), nb.getTime() + 6 * 60_000);
  t.equal(renewalDueAt(nb, na, 0.5), nb.getTime() + 4.5 * 60_000);
  // Three minutes left: every retry comes well before the certificate expires.
  for (let f = 1; f < 10; f++) t.ok(retryDelayMs(f, 3 * 60_000, () => 1) <= 30_000, `failure ${f}`);
  t.ok(retryDelayMs(20, 30 * 86_400_000, () => 1) <= 60 * 60_000, 'capped at an hour');
  t.ok(retryDelayMs(1, 0, () => 0) >= 5_000, 'never a busy loop');
});

t.test('a renewed certificate is checked before anything is replaced', async (t) => {
  const clock = new FakeClock(Date.now());
  const { pre, caDir, caPem } = await setup(clock);
  t.teardown(() => pre.close());
  const key = fromKeySigner(pre.signer);
  const spki = key.publicKeySpki!();
  const anchors = pemCertificates(readFileSync(caPem, 'utf8'));
  const csr = await createCsr(key, { subject: 'CN=edge-renew' });
  const good = await issueCertificate({ caDir, csrPem: csr.pem, days: 1, now: () => clock.now() });
  const ok = checkRenewedChain(`${good.certificatePem}\n${readFileSync(caPem, 'utf8')}`, { spki, anchors, now: clock.now(), from: 'test' });
  t.equal(ok.intermediates.length, 0, 'the root that came along is not sent as an intermediate');

  const refused = (pem: string, re: RegExp, what: string) =>
    t.throws(
      () => checkRenewedChain(pem, { spki, anchors, now: clock.now(), from: 'test' }),
      { code: 'RenewedCertificateRefused', message: re },
      what,
    );
  refused('<html>502 Bad Gateway</html>', /no PEM CERTIFICATE/, 'garbage');
  // A certificate for another key, from the right CA.
  const otherKeyFile = join(pre.dir, 'other.key');
  writeFileSync(otherKeyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  const other = await issueCertificate({ caDir, csrPem: (await createCsr(fromKeyFile(otherKeyFile), { subject: 'CN=x' })).pem, days: 1 });
  refused(other.certificatePem, /certifies another key/, 'wrong key');
  // From a CA the trust anchor does not hold.
  const strangerDir = join(pre.dir, 'stranger');
  await initCa({ dir: strangerDir, subject: 'CN=Stranger CA', days: 10 });
  const stranger = await issueCertificate({ caDir: strangerDir, csrPem: csr.pem, days: 1 });
  refused(stranger.certificatePem, /does not chain to the configured trust anchor/, 'another CA');
  // Through an intermediate that has expired.
  const caKey = (await import('node:crypto')).createPrivateKey(readFileSync(join(caDir, CA_KEY_FILE)));
  const interKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const now = clock.now();
  const inter = await buildCertificate({
    subject: 'CN=Old Intermediate',
    publicKey: interKey,
    issuer: { privateKey: caKey, certificatePem: readFileSync(caPem, 'utf8') },
    notBefore: new Date(now - 3 * 86_400_000),
    notAfter: new Date(now - 86_400_000),
    ca: { pathLength: 0 },
  });
  const leaf = await buildCertificate({
    subject: 'CN=edge-renew',
    publicKey: spki,
    issuer: { privateKey: interKey, certificatePem: inter.toString('pem') },
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
  });
  refused(`${leaf.toString('pem')}\n${inter.toString('pem')}`, /expired/, 'expired chain');
  // No digitalSignature.
  const noSig = await buildCertificate({
    subject: 'CN=edge-renew',
    publicKey: spki,
    issuer: { privateKey: caKey, certificatePem: readFileSync(caPem, 'utf8') },
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    keyUsage: ['keyEncipherment'],
  });
  refused(noSig.toString('pem'), /digitalSignature/, 'key usage');
});

t.test('method "command": argv, clean environment, deadline, bounded output', async (t) => {
  const csrPem = '-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n';
  const node = process.execPath;
  const echo = commandIssuer({ argv: [node, '-e', 'process.stdin.pipe(process.stdout)'], timeoutMs: 10_000 });
  t.equal(await echo.issue({ csrPem, now: Date.now(), validityMs: 60_000 }), csrPem, 'the CSR arrives on stdin');
  process.env.CREDPORT_RENEWAL_SECRET_PROBE = 'must-not-leak';
  t.teardown(() => delete process.env.CREDPORT_RENEWAL_SECRET_PROBE);
  const env = commandIssuer({ argv: [node, '-e', 'process.stdout.write(Object.keys(process.env).sort().join(","))'], timeoutMs: 10_000 });
  // (The test runner adds its own variables to every child it sees spawned; the daemon's stay out.)
  const seen = (await env.issue({ csrPem, now: 0, validityMs: 0 })).split(',');
  t.ok(seen.includes('PATH'), 'PATH is passed');
  t.notOk(seen.includes('CREDPORT_RENEWAL_SECRET_PROBE'), "the daemon's environment is not");
  t.notOk(seen.includes('HOME'), 'nor HOME');
  const hang = commandIssuer({ argv: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutMs: 300 });
  await t.rejects(hang.issue({ csrPem, now: 0, validityMs: 0 }), { code: 'RenewalCommandTimeout' });
  const flood = commandIssuer({
    argv: [
      node,
      '-e',
      'const b = "x".repeat(65536); const w = () => { while (process.stdout.write(b)); process.stdout.once("drain", w); }; w()',
    ],
    timeoutMs: 10_000,
  });
  await t.rejects(flood.issue({ csrPem, now: 0, validityMs: 0 }), { code: 'RenewalCommandFailed', message: /more than/ });
  const fails = commandIssuer({ argv: [node, '-e', 'console.error("CA says no\\u001b[31m"); process.exit(3)'], timeoutMs: 10_000 });
  await t.rejects(fails.issue({ csrPem, now: 0, validityMs: 0 }), { message: /exited with status 3: CA says no/ });
  const missing = commandIssuer({ argv: ['/nonexistent/signer'], timeoutMs: 1000 });
  await t.rejects(missing.issue({ csrPem, now: 0, validityMs: 0 }), { code: 'RenewalCommandFailed', message: /not found/ });
  const shell = commandIssuer({ argv: ['echo $HOME; true'], timeoutMs: 1000 });
  await t.rejects(shell.issue({ csrPem, now: 0, validityMs: 0 }), { message: /not found/ }, 'no shell interprets argv');
});

for (const method of ['credport-ca', 'command', 'aws-private-ca'] as const) {
  t.test(`${method}: a 10-minute certificate keeps credentials coming for an hour, unattended`, async (t) => {
    const clock = new FakeClock(Date.now());
    const { pre, caDir, certPath, caPem } = await setup(clock);
    t.teardown(() => pre.close());
    const script = signerScript(pre.dir, caDir);
    writeFileSync(script.nowFile, String(clock.now()));
    const renewal =
      method === 'credport-ca'
        ? { method, ca_dir: caDir }
        : method === 'command'
          ? { method, command: script.argv, timeout_seconds: 30, trust_anchor_certificate: caPem }
          : { method, certificate_authority_arn: PCA, trust_anchor_certificate: caPem, private_ca_endpoint: 'EMULATOR' };
    const stack = await startStack({
      clock,
      emulatorOnClock: true,
      keyFrom: pre,
      profiles: { edge: profile(certPath, renewal) },
      beforeStart: emulatorSetup(caDir, method === 'aws-private-ca'),
    });
    t.teardown(() => stack.close());
    const dirBefore = readdirSync(pre.dir).sort();
    const first = describeCertificate(readFileSync(certPath, 'utf8'));
    await until(stack, (h) => quiet(h) && h.profiles.edge?.state === 'ok', 'the first credentials');

    const failures: string[] = [];
    for (let minute = 1; minute <= 60; minute++) {
      writeFileSync(script.nowFile, String(clock.now() + 60_000));
      await advance(stack, clock, 60_000);
      const h = await until(stack, quiet, `minute ${minute} to settle`);
      const got = await credentials(stack);
      if (got.status !== 200)
        failures.push(`minute ${minute}: HTTP ${got.status} ${JSON.stringify(got.body)} ${JSON.stringify(h.profiles.edge)}`);
      else if (Date.parse(got.body.Expiration ?? '') <= clock.now()) failures.push(`minute ${minute}: expired credentials served`);
    }
    t.same(failures, [], 'credentials every minute for an hour');

    const sessions = stack.emulator.issuedInOrder().filter((c) => c.via === 'CreateSession');
    const serials = sessions.map((c) => c.certificateSerial).filter((s, i, all) => s !== all[i - 1]);
    t.equal(serials[0], first.serialDecimal, 'CreateSession started with the installed certificate');
    t.ok(serials.length >= 4, `CreateSession moved through ${serials.length} certificates in the hour`);
    t.equal(new Set(serials).size, serials.length, 'never back to an old certificate');
    t.equal(stack.emulator.stats.rolesAnywhereFailures, 0, 'no CreateSession failed in between');
    if (method === 'aws-private-ca')
      t.ok(stack.emulator.stats.acmPcaSuccesses >= 2 * (serials.length - 1), 'IssueCertificate + GetCertificate per renewal');

    const h = await health(stack);
    const renewalState = h.profiles.edge?.certificate?.renewal;
    t.equal(renewalState?.method, method);
    t.equal(renewalState?.consecutiveFailures, 0);
    t.equal(renewalState?.lastError, null);
    t.ok(renewalState?.nextAttempt && Date.parse(renewalState.nextAttempt) > clock.now(), 'the next renewal is scheduled');
    const now = describeCertificate(readFileSync(certPath, 'utf8'));
    t.equal(h.profiles.edge?.certificate?.serial, now.serialDecimal, '/health shows the certificate on disk');
    t.ok(now.notAfter.getTime() > clock.now(), 'the certificate in place is valid');
    t.equal(statSync(certPath).mode & 0o777, 0o644, 'written 0644');
    t.same(readdirSync(pre.dir).sort(), dirBefore, 'no stray files next to the certificate');
    const metrics = await (await fetch(`${stack.daemon!.url}/metrics`)).text();
    t.match(metrics, new RegExp(`credport_certificate_renewal_failures\\{profile="edge",method="${method}"\\} 0`));
  });
}

t.test('renewal failures keep the certificate in use and reach /health, status and metrics', async (t) => {
  const clock = new FakeClock(Date.now());
  const { pre, caDir, certPath, caPem } = await setup(clock);
  t.teardown(() => pre.close());
  const stack = await startStack({
    clock,
    emulatorOnClock: true,
    keyFrom: pre,
    profiles: {
      edge: profile(certPath, {
        method: 'aws-private-ca',
        certificate_authority_arn: PCA,
        trust_anchor_certificate: caPem,
        private_ca_endpoint: 'EMULATOR',
      }),
    },
    beforeStart: emulatorSetup(caDir, true),
  });
  t.teardown(() => stack.close());
  await until(stack, (h) => quiet(h) && h.profiles.edge?.state === 'ok', 'the first credentials');
  const original = readFileSync(certPath, 'utf8');
  const serial = describeCertificate(original).serialDecimal;

  // The CA is down: connections are cut.
  stack.emulator.setFault({ kind: 'unavailable' }, { service: 'acm-pca' });
  await advance(stack, clock, 7 * 60_000);
  let h = await until(stack, (x) => quiet(x) && (x.profiles.edge?.certificate?.renewal?.consecutiveFailures ?? 0) >= 1, 'a failed renewal');
  t.equal(h.profiles.edge?.certificate?.renewal?.lastError?.code, 'CertificateAuthorityUnreachable');
  t.equal(readFileSync(certPath, 'utf8'), original, 'the old certificate stays');
  t.match(h.warnings.join('\n'), /certificate renewal \(aws-private-ca\) failed/);
  t.equal((await credentials(stack)).status, 200, 'credentials are still served');
  const metrics = await (await fetch(`${stack.daemon!.url}/metrics`)).text();
  t.match(metrics, /credport_certificate_renewal_failures\{profile="edge",method="aws-private-ca"\} [1-9]/);
  const nextAttempt = Date.parse(h.profiles.edge?.certificate?.renewal?.nextAttempt ?? '');
  t.ok(
    nextAttempt > clock.now() && nextAttempt < Date.parse(describeCertificate(original).notAfter.toISOString()),
    'retried before expiry',
  );

  // The CA answers with an HTML page instead of JSON.
  stack.emulator.setFault({ kind: 'malformed' }, { service: 'acm-pca' });
  await advance(stack, clock, nextAttempt - clock.now());
  h = await until(stack, (x) => quiet(x) && (x.profiles.edge?.certificate?.renewal?.consecutiveFailures ?? 0) >= 2, 'a second failure');
  t.equal(readFileSync(certPath, 'utf8'), original, 'still the old certificate');
  t.equal(h.profiles.edge?.certificate?.serial, serial);

  // Back up: the next retry renews, and the failures are cleared.
  stack.emulator.setFault(null);
  const retryAt = Date.parse(h.profiles.edge?.certificate?.renewal?.nextAttempt ?? '');
  await advance(stack, clock, retryAt - clock.now());
  h = await until(stack, (x) => quiet(x) && x.profiles.edge?.certificate?.serial !== serial, 'a renewal after the outage');
  t.equal(h.profiles.edge?.certificate?.renewal?.consecutiveFailures, 0);
  t.equal(h.profiles.edge?.certificate?.renewal?.lastError, null);
  t.equal(stack.emulator.stats.rolesAnywhereFailures, 0);
});

t.test('a CA that signs for the wrong key, or a command printing garbage: refused, old certificate kept', async (t) => {
  const clock = new FakeClock(Date.now());
  const { pre, caDir, certPath, caPem } = await setup(clock);
  t.teardown(() => pre.close());
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const otherKeyFile = join(pre.dir, 'other.key');
  writeFileSync(otherKeyFile, otherKey, { mode: 0o600 });
  const wrong = await issueCertificate({
    caDir,
    csrPem: (await createCsr(fromKeyFile(otherKeyFile), { subject: 'CN=edge-renew' })).pem,
    days: 1,
    now: () => clock.now(),
  });
  const wrongFile = join(pre.dir, 'wrong.pem');
  writeFileSync(wrongFile, wrong.certificatePem);
  const mode = join(pre.dir, 'mode.txt');
  writeFileSync(mode, 'wrong');
  const script = join(pre.dir, 'bad-ca.mjs');
  writeFileSync(
    script,
    `import { readFileSync } from 'node:fs';
readFileSync(0);
const m = readFileSync(${JSON.stringify(mode)}, 'utf8');
if (m === 'hang') setInterval(() => {}, 1000);
else process.stdout.write(m === 'wrong' ? readFileSync(${JSON.stringify(wrongFile)}, 'utf8') : '<html>not a certificate</html>');
`,
  );
  chmodSync(script, 0o644);
  const stack = await startStack({
    clock,
    emulatorOnClock: true,
    keyFrom: pre,
    profiles: {
      edge: profile(certPath, {
        method: 'command',
        command: [process.execPath, script],
        timeout_seconds: 5,
        trust_anchor_certificate: caPem,
      }),
    },
    beforeStart: emulatorSetup(caDir, false),
  });
  t.teardown(() => stack.close());
  await until(stack, (h) => quiet(h) && h.profiles.edge?.state === 'ok', 'the first credentials');
  const original = readFileSync(certPath, 'utf8');
  await advance(stack, clock, 7 * 60_000);
  let h = await until(stack, (x) => quiet(x) && (x.profiles.edge?.certificate?.renewal?.consecutiveFailures ?? 0) >= 1, 'refusal');
  t.equal(h.profiles.edge?.certificate?.renewal?.lastError?.code, 'RenewedCertificateRefused');
  t.match(h.profiles.edge?.certificate?.renewal?.lastError?.message, /certifies another key/);
  t.equal(readFileSync(certPath, 'utf8'), original);
  writeFileSync(mode, 'garbage');
  await advance(stack, clock, Date.parse(h.profiles.edge?.certificate?.renewal?.nextAttempt ?? '') - clock.now());
  h = await until(stack, (x) => quiet(x) && (x.profiles.edge?.certificate?.renewal?.consecutiveFailures ?? 0) >= 2, 'second refusal');
  t.match(h.profiles.edge?.certificate?.renewal?.lastError?.message, /no PEM CERTIFICATE/);
  t.equal(readFileSync(certPath, 'utf8'), original);
  t.equal((await credentials(stack)).status, 200);
  // A signer that never answers: killed at timeout_seconds (real time: the process is real).
  writeFileSync(mode, 'hang');
  await advance(stack, clock, Date.parse(h.profiles.edge?.certificate?.renewal?.nextAttempt ?? '') - clock.now());
  const hung = await until(stack, (x) => quiet(x) && (x.profiles.edge?.certificate?.renewal?.consecutiveFailures ?? 0) >= 3, 'the timeout');
  t.equal(hung.profiles.edge?.certificate?.renewal?.lastError?.code, 'RenewalCommandTimeout');
  t.equal(readFileSync(certPath, 'utf8'), original);
  // The in-process daemon listens on port 0, which the config cannot name: what status and doctor print from /health.
  // At least three failures; a retry may have come and gone while the hung command ran out its 5 real seconds.
  const failures = hung.profiles.edge?.certificate?.renewal?.consecutiveFailures ?? 0;
  t.match(
    renderStatus(hung as unknown as HealthReport, clock.now()),
    new RegExp(`certificate renewal \\(command\\) failed ${failures} time`),
    'credport status shows it',
  );
  const checks = await certificateChecks(stack.config, hung as unknown as HealthReport);
  t.match(
    checks.find((c) => c.name === 'certificate renewal'),
    { status: 'warn', detail: new RegExp(`command renewal failed ${failures} time\\(s\\): RenewalCommandTimeout`) },
    'credport doctor shows it',
  );
});

t.test('revocation: ca revoke + ca crl, imported and enabled: refused, last good credentials still served', async (t) => {
  const clock = new FakeClock(Date.now());
  const { pre, caDir, certPath } = await setup(clock, 24 * 60 * 60_000);
  t.teardown(() => pre.close());
  const env = { CREDPORT_CONFIG: pre.configFile };
  const stack = await startStack({
    clock,
    emulatorOnClock: true,
    keyFrom: pre,
    profiles: { edge: profile(certPath) },
    beforeStart: emulatorSetup(caDir, false),
  });
  t.teardown(() => stack.close());
  await until(stack, (h) => quiet(h) && h.profiles.edge?.state === 'ok', 'the first credentials');
  const good = await credentials(stack);
  t.equal(good.status, 200);

  // Numbers grow with each CRL; an empty CRL imported and enabled changes nothing.
  const first = await runCliAsync(['ca', 'crl', '--dir', caDir, '--days', '2'], env);
  t.equal(first.status, 0, first.stderr);
  t.match(first.stdout, /CRL number 1: 0 revoked/);
  const serial = describeCertificate(readFileSync(certPath, 'utf8')).serialDecimal;
  const revoke = await runCliAsync(['ca', 'revoke', '--dir', caDir, serial], env);
  t.equal(revoke.status, 0, revoke.stderr);
  t.match(revoke.stdout, new RegExp(`revoked serial ${serial}`));
  const again = await runCliAsync(['ca', 'revoke', '--dir', caDir, certPath], env);
  t.match(again.stdout, /already revoked/, 'by certificate file too');
  const derPath = join(pre.dir, 'crl.der');
  const second = await runCliAsync(['ca', 'crl', '--dir', caDir, '--out', derPath, '--der'], env);
  t.equal(second.status, 0, second.stderr);
  t.match(second.stdout, /CRL number 2: 1 revoked/);
  t.equal(statSync(join(caDir, 'revoked.json')).mode & 0o777, 0o644);
  t.equal(statSync(join(caDir, CA_KEY_FILE)).mode & 0o777, 0o600, 'the CA key is untouched');

  // A CRL from another CA is refused by the service.
  const strangerDir = join(pre.dir, 'stranger');
  await initCa({ dir: strangerDir, subject: 'CN=Stranger CA', days: 10 });
  const foreign = await issueCrl(strangerDir);
  await t.rejects(
    stack.emulator.importCrl({ trustAnchorArn: TA, crlData: foreign.der, enabled: true }),
    /not signed by a CA certificate of the trust anchor/,
  );

  const imported = await stack.emulator.importCrl({ trustAnchorArn: TA, crlData: readFileSync(derPath) });
  // Imported but not enabled: not consulted yet. Wait for the refresh itself to finish, not just for a
  // quiet moment before it starts: one still in flight when the clock jumps again would be signed 8 minutes
  // in the emulator's past and refused for its time, not for the CRL.
  const before = (await health(stack)).profiles.edge?.lastRefresh;
  await advance(stack, clock, 8 * 60_000);
  let h = await until(stack, (x) => quiet(x) && x.profiles.edge?.lastRefresh !== before, 'a refresh');
  t.equal(h.profiles.edge?.state, 'ok');
  t.equal(h.profiles.edge?.lastError, null, 'a disabled CRL is not consulted');
  stack.emulator.setCrlEnabled(imported.crlId, true);
  await advance(stack, clock, 8 * 60_000);
  h = await until(stack, (x) => quiet(x) && x.profiles.edge?.lastError !== null, 'the refusal');
  t.equal(h.profiles.edge?.lastError?.code, 'AccessDeniedException');
  t.match(h.profiles.edge?.lastError?.message, /revoked/);
  const still = await credentials(stack);
  t.equal(still.status, 200, 'the last good credentials are still served while valid');
  t.ok(stack.emulator.stats.rolesAnywhereFailures >= 1);
});

t.test('credport cert renew: by hand, --now, and --new-key for a key file', async (t) => {
  const clock = new FakeClock(Date.now());
  const { pre, caDir, certPath } = await setup(clock, 24 * 60 * 60_000);
  t.teardown(() => pre.close());
  const keyFile = join(pre.dir, 'rsa.key');
  writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  const rsaCert = await issueCertificate({
    caDir,
    csrPem: (await createCsr(fromKeyFile(keyFile), { subject: 'CN=edge-rsa' })).pem,
    days: 2,
    outPath: join(pre.dir, 'rsa.pem'),
  });
  const stack = await startStack({
    startDaemon: false,
    keyFrom: pre,
    profiles: {
      edge: profile(certPath, { method: 'credport-ca', ca_dir: caDir }),
      rsa: { ...profile(rsaCert.path!, { method: 'credport-ca', ca_dir: caDir }), private_key: keyFile, default: false },
    },
  });
  t.teardown(() => stack.close());
  const env = { CREDPORT_CONFIG: stack.configFile };
  const notDue = await runCliAsync(['cert', 'renew', '--profile', 'edge'], env);
  t.equal(notDue.status, 0, notDue.stderr);
  t.match(notDue.stdout, /not due until .*use --now/);
  const before = describeCertificate(readFileSync(certPath, 'utf8'));
  const now = await runCliAsync(['cert', 'renew', '--profile', 'edge', '--now'], env);
  t.equal(now.status, 0, now.stderr);
  const after = describeCertificate(readFileSync(certPath, 'utf8'), { jwk: { ...pre.signer.publicJwk() } });
  t.not(after.serialDecimal, before.serialDecimal);
  t.ok(after.matchesKey, 'the same device key');
  t.match(now.stdout, new RegExp(`renewed \\(credport-ca\\): serial ${after.serialDecimal}`));

  const keyBefore = readFileSync(keyFile, 'utf8');
  const rotated = await runCliAsync(['cert', 'renew', '--profile', 'rsa', '--new-key'], env);
  t.equal(rotated.status, 0, rotated.stderr);
  t.not(
    createHash('sha256').update(readFileSync(keyFile)).digest('hex'),
    createHash('sha256').update(keyBefore).digest('hex'),
    'a new key',
  );
  t.equal(statSync(keyFile).mode & 0o777, 0o600);
  const spki = fromKeyFile(keyFile).publicKeySpki!();
  t.ok(describeCertificate(readFileSync(rsaCert.path!, 'utf8'), { spki }).matchesKey, 'the new certificate is for the new key');
  t.match(describeCertificate(readFileSync(rsaCert.path!, 'utf8')).keyType, /^RSA-2048/, 'a key of the same kind');
  const deviceNewKey = await runCliAsync(['cert', 'renew', '--profile', 'edge', '--new-key'], env);
  t.equal(deviceNewKey.status, 2);
  t.match(deviceNewKey.stderr, /signs with the device key/);
  const help = await runCliAsync(['cert', 'renew', '--help'], env);
  t.match(help.stdout, /Usage: credport cert renew/);
  for (const cmd of [
    ['ca', 'revoke'],
    ['ca', 'crl'],
  ])
    t.match((await runCliAsync([...cmd, '--help'], env)).stdout, /Usage: credport ca/);
});
