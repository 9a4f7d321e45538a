/**
 * Every provider against a hostile upstream (test/helpers/hostile-upstream.ts), through the real
 * daemon: aws-oidc (STS AssumeRoleWithWebIdentity), aws-assume-role (STS AssumeRole, signed with a
 * source profile's session) and aws-rolesanywhere (CreateSession), each behind its own hostile proxy in
 * front of the emulator. For each mode (stall after headers, drip, flood, a lying Date, an absurd
 * Expiration, codes and messages built to break logs and metrics, an echo of the request):
 *   - while the refresh runs, a credentials request is answered 200 with the held credentials before a
 *     client's own timeout (an AbortSignal on the request: a behaviour check, not a timing measure);
 *   - the refresh ends (the deadline holds) and /health tells the truth: refreshing false, the
 *     expected lastError code, the profile failing but served;
 *   - nothing secret (the JWT, the signing session's token, signatures, served credentials) appears in
 *     /health, /metrics or the log; no control characters in what /health shows;
 *   - the profile recovers as soon as the upstream is healthy again.
 * Then: refresh-failure metric series stay bounded whatever codes the upstream invents; a flood leaves
 * memory bounded; and a cold profile (nothing held) answers 503 within the client's patience, with the
 * upstream's code once it has one, making one upstream call however many requests wait.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ProfileRefresher } from '../daemon/refresh/profile-refresher.js';
import { initCa, issueCertificate } from '../daemon/x509/ca.js';
import { createCsr } from '../daemon/x509/csr.js';
import { startHostileUpstream, type HostileMode, type HostileUpstream } from './helpers/hostile-upstream.js';
import { ACCOUNT, roleArnFor, startStack, type Stack } from './helpers/stack.js';

const CLIENT_TIMEOUT_MS = 2000;
/** The daemon's per-call deadline in this suite: small, so each stalled case is short. */
const DEADLINE_MS = 1000;
const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:trust-anchor/11111111-2222-3333-4444-555555555555`;
const RA_PROFILE = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:profile/66666666-7777-8888-9999-000000000000`;
const RA_ROLE = roleArnFor('hostile-ra');
const CHAIN_ROLE = roleArnFor('hostile-chained');
const SOURCE_ROLE = roleArnFor('role-src');

interface Subject {
  profile: string;
  upstream: HostileUpstream;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function ecs(s: Stack, profile: string, timeoutMs = CLIENT_TIMEOUT_MS): Promise<Answer> {
  const res = await fetch(`${s.daemon!.url}/v1/credentials/${profile}`, {
    headers: { authorization: s.token() },
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function healthText(s: Stack): Promise<string> {
  return (await fetch(`${s.daemon!.url}/health`)).text();
}

async function metricsText(s: Stack): Promise<string> {
  return (await fetch(`${s.daemon!.url}/metrics`)).text();
}

const refresher = (s: Stack, profile: string): ProfileRefresher => {
  const r = s.daemon!.scheduler.get(profile);
  if (!r) throw new Error(`no profile ${profile}`);
  return r;
};

/** A promise's outcome, or 'still running' after `ms` of real time: no await in this suite is unbounded. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((r) => (timer = setTimeout(() => r('still running'), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Everything secret the daemon sent upstream or served: JWTs, session tokens, signatures, secret keys. */
function secretsSeen(subjects: Subject[], served: Set<string>): string[] {
  const out = new Set<string>(served);
  for (const { upstream } of subjects) {
    for (const r of upstream.received) {
      const form = new URLSearchParams(r.body);
      const jwt = form.get('WebIdentityToken');
      if (jwt) out.add(jwt);
      if (r.headers['x-amz-security-token']) out.add(r.headers['x-amz-security-token']);
      const sig = /Signature=([0-9a-f]{64})/.exec(r.headers.authorization ?? '')?.[1];
      if (sig) out.add(sig);
    }
  }
  return [...out].filter((x) => x.length >= 20);
}

/** The first 20-character piece of a secret found in `text`, if any (pieces every 10 characters). */
function leakedPiece(text: string, secrets: string[]): string | undefined {
  for (const secret of secrets) {
    for (let i = 0; i + 20 <= secret.length && i < 4000; i += 10) {
      const piece = secret.slice(i, i + 20);
      if (text.includes(piece)) return `${piece}... (of a ${secret.length}-character secret)`;
    }
  }
  return undefined;
}

interface Case {
  name: string;
  mode: HostileMode;
  /** The lastError code /health must show, per provider type. */
  code: (profile: string) => string;
}

const ra = (p: string): boolean => p === 'ra';
const ANSI_CODE = '\u001b[31mEvil\nCode\u001b[0m';
const ANSI_MESSAGE = 'line one\nline two \u001b[2J\u001b[31mred\u001b[0m\r{"level":50,"msg":"forged"}';

const CASES: Case[] = [
  { name: 'stall after headers and 200 body bytes', mode: { kind: 'stall', bodyBytes: 200 }, code: () => 'UpstreamTimeout' },
  { name: 'drip a byte every 50 ms', mode: { kind: 'drip', everyMs: 50 }, code: () => 'UpstreamTimeout' },
  { name: 'flood (400 MiB offered)', mode: { kind: 'flood', maxBytes: 400 * 1024 * 1024 }, code: () => 'ResponseTooLarge' },
  { name: 'Date: 1970', mode: { kind: 'date', date: 'Thu, 01 Jan 1970 00:00:00 GMT' }, code: () => 'ImplausibleClockSkew' },
  { name: 'Date: far future', mode: { kind: 'date', date: 'Sun, 31 Dec 2190 23:59:59 GMT' }, code: () => 'ImplausibleClockSkew' },
  { name: 'Expiration 9999-12-31', mode: { kind: 'expiration', value: '9999-12-31T23:59:59Z' }, code: () => 'ImplausibleExpiration' },
  {
    name: 'a 10,000-character code and message',
    mode: { kind: 'error', status: 400, code: 'C'.repeat(10_000), message: 'M'.repeat(10_000) },
    code: () => 'UpstreamError',
  },
  {
    name: 'ANSI escapes and newlines in code and message',
    mode: { kind: 'error', status: 400, code: ANSI_CODE, message: ANSI_MESSAGE },
    code: () => 'UpstreamError',
  },
  {
    name: 'the request echoed in the error message',
    mode: { kind: 'echo' },
    code: (p) => (ra(p) ? 'ValidationException' : 'ValidationError'),
  },
];

async function setUp(t: Test): Promise<{ s: Stack; subjects: Subject[]; served: Set<string> }> {
  const pre = await startStack({ startDaemon: false });
  t.teardown(() => pre.close());
  const caDir = join(pre.dir, 'ca');
  mkdirSync(caDir);
  await initCa({ dir: join(caDir, 'x'), subject: 'CN=hostile CA', days: 30 });
  const csr = await createCsr(pre.signer);
  const cert = await issueCertificate({ caDir: join(caDir, 'x'), csrPem: csr.pem, days: 30, outPath: join(pre.dir, 'device.pem') });
  const hOidc = await startHostileUpstream();
  const hChain = await startHostileUpstream();
  const hRa = await startHostileUpstream();
  t.teardown(() => Promise.all([hOidc.close(), hChain.close(), hRa.close()]));
  const s = await startStack({
    keyFrom: pre,
    tuning: { requestTimeoutMs: DEADLINE_MS },
    profiles: {
      oidc: { sts_endpoint: hOidc.url, default: true },
      src: {},
      chained: {
        type: 'aws-assume-role',
        source_profile: 'src',
        role_arn: CHAIN_ROLE,
        region: 'us-east-1',
        duration_seconds: 3600,
        sts_endpoint: hChain.url,
      },
      ra: {
        type: 'aws-rolesanywhere',
        certificate: cert.path!,
        trust_anchor_arn: TA,
        profile_arn: RA_PROFILE,
        role_arn: RA_ROLE,
        duration_seconds: 3600,
        endpoint: hRa.url,
      },
    },
    beforeStart: (e) => {
      for (const h of [hOidc, hChain, hRa]) h.target = e.url;
      e.createRole({ arn: CHAIN_ROLE, trust: { principalArns: [SOURCE_ROLE] } });
      e.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, 'x', 'ca.pem'), 'utf8') });
      e.createRolesAnywhereProfile({ arn: RA_PROFILE, roleArns: [RA_ROLE], durationSeconds: 43200 });
      e.createRole({ arn: RA_ROLE, maxSessionDurationSeconds: 43200, trust: { rolesAnywhere: true } });
    },
  });
  t.teardown(() => s.close());
  const subjects: Subject[] = [
    { profile: 'oidc', upstream: hOidc },
    { profile: 'chained', upstream: hChain },
    { profile: 'ra', upstream: hRa },
  ];
  const served = new Set<string>();
  for (const { profile } of [...subjects, { profile: 'src' }]) {
    const a = await ecs(s, profile, 10_000);
    t.equal(a.status, 200, `${profile}: credentials at start`);
    served.add(String(a.body.SecretAccessKey));
    served.add(String(a.body.Token));
  }
  return { s, subjects, served };
}

/** One provider through one hostile mode and back; see the top of the file. */
async function hostileCase(t: Test, s: Stack, subj: Subject, c: Case, served: Set<string>): Promise<void> {
  const { profile, upstream } = subj;
  const r = refresher(s, profile);
  const before = await ecs(s, profile);
  t.equal(before.status, 200, 'credentials held before the fault');
  upstream.mode = c.mode;
  const refreshing = r.refreshNow().then(
    () => undefined,
    (err: unknown) => err as { code?: string },
  );
  // While the refresh is in flight: answered at once from what is held.
  const during = await ecs(s, profile);
  t.equal(during.status, 200, 'answered 200 before the client gives up, while the refresh runs');
  t.equal(during.body.AccessKeyId, before.body.AccessKeyId, 'with the held credentials');
  const outcome = await within(refreshing, 10_000);
  t.not(outcome, 'still running', 'the refresh ended: the deadline holds');
  t.equal(outcome === 'still running' ? undefined : outcome?.code, c.code(profile), 'the refresh failed with the expected code');
  const health = JSON.parse(await healthText(s)) as {
    profiles: Record<string, { refreshing: boolean; state: string; lastError: { code: string; message: string } | null }>;
  };
  const p = health.profiles[profile]!;
  t.equal(p.refreshing, false, '/health: not refreshing any more');
  t.equal(p.state, 'failing', '/health: failing, still served');
  t.equal(p.lastError?.code, c.code(profile), '/health: the code');
  t.ok((p.lastError?.message.length ?? 0) <= 300, '/health: the message is bounded');
  t.notMatch(p.lastError?.message ?? '', /[\u0000-\u001f\u007f]/, '/health: no control characters in the message');
  const again = await ecs(s, profile);
  t.equal(again.status, 200, 'still served after the failure');
  // Recovery: the upstream is healthy again, the next refresh succeeds.
  upstream.mode = { kind: 'pass' };
  const recovered = await within(
    r.refreshNow().then(
      () => 'ok',
      (err: unknown) => `failed: ${(err as Error).message}`,
    ),
    10_000,
  );
  t.equal(recovered, 'ok', 'recovers once the upstream is healthy');
  const after = await ecs(s, profile);
  t.equal(after.status, 200);
  t.not(after.body.AccessKeyId, before.body.AccessKeyId, 'fresh credentials after recovery');
  served.add(String(after.body.SecretAccessKey));
  served.add(String(after.body.Token));
}

t.test('every provider against every hostile mode', async (t) => {
  const { s, subjects, served } = await setUp(t);
  for (const c of CASES) {
    await t.test(c.name, async (tt) => {
      const rssBefore = process.memoryUsage().rss;
      const sentBefore = subjects.map((x) => x.upstream.bodyBytesSent.length);
      await Promise.all(subjects.map((subj) => tt.test(subj.profile, (ttt) => hostileCase(ttt, s, subj, c, served))));
      if (c.mode.kind === 'flood') {
        subjects.forEach((subj, i) => {
          const sent = subj.upstream.bodyBytesSent.slice(sentBefore[i]).reduce((a, b) => a + b, 0);
          tt.ok(sent < 64 * 1024 * 1024, `${subj.profile}: the flood was cut off early (${sent} of ${400 * 1024 * 1024} bytes sent)`);
        });
        const grew = process.memoryUsage().rss - rssBefore;
        tt.ok(grew < 256 * 1024 * 1024, `RSS bounded under a flood (grew ${Math.round(grew / 1048576)} MiB)`);
      }
    });
  }

  const secrets = secretsSeen(subjects, served);
  t.ok(secrets.length >= 6, 'the JWTs, session tokens and signatures sent upstream are known to the check');
  const health = await healthText(s);
  const metrics = await metricsText(s);
  const logs = s.logs.join('\n');
  t.equal(leakedPiece(health, secrets), undefined, 'no secret in /health');
  t.equal(leakedPiece(metrics, secrets), undefined, 'no secret in /metrics');
  t.equal(leakedPiece(logs, secrets), undefined, 'no secret in the log');
  t.notMatch(health, /eyJ/, 'no JWT-shaped text in /health');
  t.notMatch(logs, /eyJ/, 'no JWT-shaped text in the log');
  t.notMatch(logs, /\\u001b|\u001b/, 'no escape character in the log');
});

t.test('codes the upstream invents do not create metric series', async (t) => {
  const { s, subjects } = await setUp(t);
  const seriesOf = async (): Promise<string[]> =>
    (await metricsText(s)).split('\n').filter((l) => l.startsWith('credport_credential_refreshes_total{'));
  const codes: string[] = [];
  for (let i = 0; i < 8; i++) {
    const code = `Invented${randomBytes(6).toString('hex')}`;
    codes.push(code);
    for (const subj of subjects) subj.upstream.mode = { kind: 'error', status: 400, code, message: `failure ${i}` };
    await Promise.all(
      subjects.map((subj) =>
        refresher(s, subj.profile)
          .refreshNow()
          .catch(() => undefined),
      ),
    );
  }
  const series = await seriesOf();
  t.ok(series.length <= 4 * 2, `a handful of series (${series.length}), not one per failure`);
  for (const code of codes)
    t.notOk(
      series.some((l) => l.includes(code)),
      `${code} is not a label`,
    );
  for (const subj of subjects)
    t.ok(
      series.some((l) => l.includes(`profile="${subj.profile}"`) && l.includes('code="other"')),
      `${subj.profile}: counted under "other"`,
    );
  const health = JSON.parse(await healthText(s)) as { profiles: Record<string, { lastError: { code: string } | null }> };
  t.equal(health.profiles.oidc?.lastError?.code, codes.at(-1), '/health keeps the (well-formed) code itself');
});

t.test("a cold profile: 503 within the client's patience, one upstream call, the upstream's code once known", async (t) => {
  const cold = await startHostileUpstream({ kind: 'stall', bodyBytes: 200 });
  t.teardown(() => cold.close());
  // The deadline is longer than a client waits, so the first answers come from the wait bound.
  const s = await startStack({
    tuning: { requestTimeoutMs: 3000 },
    profiles: { cold: { sts_endpoint: cold.url } },
    beforeStart: (e) => void (cold.target = e.url),
  });
  t.teardown(() => s.close());
  const answers = await Promise.all(Array.from({ length: 50 }, () => ecs(s, 'cold')));
  t.same([...new Set(answers.map((a) => a.status))], [503], 'every waiting request got 503 before the client gave up');
  t.same([...new Set(answers.map((a) => a.body.Code))], ['CredentialsUnavailable'], 'no upstream answer yet: CredentialsUnavailable');
  t.equal(cold.received.length, 1, 'one upstream call for fifty waiting requests');
  // Bounded poll (real time) until the stalled call has hit its deadline.
  let code: unknown;
  for (let i = 0; i < 100 && code === undefined; i++) {
    const h = JSON.parse(await healthText(s)) as { profiles: Record<string, { lastError: { code: string } | null; refreshing: boolean }> };
    code = h.profiles.cold?.refreshing === false ? h.profiles.cold.lastError?.code : undefined;
    if (code === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(code, 'UpstreamTimeout', '/health: the stalled call was abandoned at its deadline');
  const after = await ecs(s, 'cold');
  t.equal(after.status, 503);
  t.equal(after.body.Code, 'UpstreamTimeout', "the 503 carries the upstream's last error code");
  cold.mode = { kind: 'pass' };
  let ok: Answer | undefined;
  // Requests may retry the upstream once per retry_base (2 s): bounded, a few seconds of real time.
  for (let i = 0; i < 40 && ok?.status !== 200; i++) {
    ok = await ecs(s, 'cold');
    if (ok.status !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(ok?.status, 200, 'recovers once the upstream is healthy');
});
