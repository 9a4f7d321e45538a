/**
 * Upstream faults, for STS (aws-oidc) and IAM Roles Anywhere (aws-rolesanywhere) alike: the upstream
 * down (connection reset, connection refused), slower than the request timeout, answering 5xx,
 * throttling, malformed or truncated bodies, credentials that are already expired, and clocks that
 * disagree. The daemon and the emulator share a fake clock (each call is still real HTTP), so each
 * case drives hour-long credentials through their whole life: the fault starts right after the first
 * fetch, and the test walks time forward one timer at a time, asking for credentials every minute.
 *
 * For every case:
 *   - every 200 carries the last good credentials, all four fields non-empty, Expiration at least the
 *     expiry margin away: never an expired or an empty credential;
 *   - the backoff shows in /health: consecutiveFailures counting up, nextRefresh 2, 4, 8, 16 s after
 *     each failure (jitter pinned), lastError.code the upstream's code;
 *   - once the last good credentials are within the margin: 503 {Code, Message} on ECS and IMDS, Code
 *     the upstream's (or, for a 200 with unusable credentials, the daemon's own) and Message naming it;
 *   - once the upstream is back: fresh credentials at the next retry (one backoff step), after exactly
 *     one more upstream call.
 *
 * Then: Roles Anywhere with the device clock 10 minutes off either way (the provider learns the offset
 * from the refusal's Date header and re-signs: no refresh fails, and what is served is fresh by both
 * clocks); the same while an outage outlives the credentials (judged by the service's clock, which is
 * the one that decides whether they still work), and STS with the device clock 4 minutes slow (which
 * STS tolerates); and a transient fault (three throttled refreshes)
 * that ends before the credentials age: new credentials at the third retry, never a 503.
 */
import t, { type Test } from 'tap';
import {
  HOUR,
  MIN,
  PROFILE_OF,
  credentialProblems,
  startFaultStack,
  walk,
  type Answer,
  type FaultStack,
  type Served,
  type Service,
} from './helpers/faults-stack.js';

const MARGIN_MS = 60_000; // expiry_margin_seconds default
const RETRY_MAX_MS = 300_000; // retry_max_seconds default
/**
 * The provider's request timeout in the 'slow upstream' cases, whose fault holds each answer ten times
 * as long; every other case keeps a generous timeout, so a loaded machine cannot turn it into a timeout.
 */
const SHORT_TIMEOUT_MS = 300;
const TIMEOUT_MS = 5000;
const REQUEST_EVERY_MS = MIN;

interface OutageCase {
  name: string;
  service: Service;
  /** Credential lifetime the emulator issues; default what the profile asks (one hour). */
  lifetimeSeconds?: number;
  timeoutMs?: number;
  begin(s: FaultStack): void | Promise<void>;
  end(s: FaultStack): void | Promise<void>;
  code: string;
  message: RegExp;
}

interface FailureSeen {
  failures: number;
  code: string | undefined;
  at: number;
  next: number;
  state: string;
}

const fields = (b: Record<string, unknown>): string => String(b.AccessKeyId);

/** The whole life of one outage; see the top of the file. */
async function outage(t: Test, c: OutageCase): Promise<void> {
  const s = await startFaultStack({
    services: [c.service],
    tuning: { maxAttempts: 1, requestTimeoutMs: c.timeoutMs ?? TIMEOUT_MS },
    ...(c.lifetimeSeconds !== undefined ? { beforeStart: (e) => e.setCredentialLifetime(c.lifetimeSeconds ?? null) } : {}),
  });
  t.teardown(() => s.close());
  const profile = PROFILE_OF[c.service];
  await s.idle();

  const first = await s.ecs(profile);
  t.equal(first.status, 200, 'credentials before the fault');
  t.same(credentialProblems(first.body, s.clock.now(), MARGIN_MS), [], 'and they are complete and fresh');
  if (first.status !== 200) return;
  const goodId = fields(first.body);
  const goodExp = Date.parse(String(first.body.Expiration));
  t.equal(s.issued(goodId)?.sessionToken, first.body.Token, 'exactly what the emulator issued');

  await c.begin(s);

  const bad200: string[] = [];
  const unexpected: string[] = [];
  const seen: FailureSeen[] = [];
  let served = 0;
  let lastServedAt = 0;
  let first503: { a: Answer; at: number } | undefined;
  const later: Answer[] = [];
  let lastFailures = 0;
  let nextRequest = s.clock.now() + REQUEST_EVERY_MS;
  // Bounded: an hour of one-minute requests and every timer in between is a few hundred steps.
  for (let i = 0; i < 5000 && later.length < 2; i++) {
    await s.advanceTo(Math.min(s.clock.nextTimerAt() ?? Number.POSITIVE_INFINITY, nextRequest));
    if (s.clock.now() >= nextRequest) {
      nextRequest += REQUEST_EVERY_MS;
      const now = s.clock.now();
      const a = await s.ecs(profile);
      if (a.status === 200 && first503 === undefined) {
        served++;
        lastServedAt = now;
        for (const p of credentialProblems(a.body, now, MARGIN_MS)) bad200.push(p);
        if (fields(a.body) !== goodId) bad200.push(`served ${fields(a.body)}, not the last good ${goodId}`);
        // Every fifth request, IMDS too: the same credentials under the same rules.
        if (served % 5 === 0) {
          const m = await s.imds();
          if (m.status !== 200) unexpected.push(`IMDS ${m.status} while ECS served: ${m.text.slice(0, 200)}`);
          else if (fields(m.body) !== goodId) bad200.push(`IMDS served ${fields(m.body)}, not the last good ${goodId}`);
          else bad200.push(...credentialProblems(m.body, now, MARGIN_MS).map((p) => `IMDS: ${p}`));
        }
      } else if (a.status === 503 && first503 === undefined) {
        first503 = { a, at: now };
      } else if (a.status === 503) {
        later.push(a);
      } else {
        unexpected.push(`${a.status} at ${new Date(now).toISOString()}: ${a.text.slice(0, 200)}`);
      }
    }
    const failures = s.status(profile).consecutiveFailures;
    if (failures !== lastFailures) {
      lastFailures = failures;
      const p = (await s.health()).profiles[profile];
      if (p)
        seen.push({
          failures: p.consecutiveFailures,
          code: p.lastError?.code,
          at: Date.parse(p.lastError?.at ?? ''),
          next: Date.parse(p.nextRefresh ?? ''),
          state: p.state,
        });
    }
  }

  t.same(bad200, [], 'every 200 during the outage was the last good credentials, complete, with at least the margin left');
  t.same(unexpected, [], 'no answer other than 200 (before) and 503 (after)');
  t.ok(served >= 5, `the last good credentials were served through the outage (${served} requests)`);
  t.ok(lastServedAt >= goodExp - MARGIN_MS - REQUEST_EVERY_MS, 'until the last request before they came within the margin');

  t.ok(seen.length >= 3, `refreshes failed and were retried (${seen.length} failures seen in /health)`);
  t.same([...new Set(seen.map((f) => f.code))], [c.code], `/health lastError.code is ${c.code} throughout`);
  t.ok(
    seen.every((f, i) => i === 0 || f.failures > (seen[i - 1]?.failures ?? 0)),
    'consecutiveFailures counts up',
  );
  t.ok(
    seen.every((f) => f.next > f.at && f.next - f.at <= RETRY_MAX_MS),
    'nextRefresh is after each failure, at most retry_max later',
  );
  t.same(
    seen.slice(0, 4).map((f) => f.next - f.at),
    [2000, 4000, 8000, 16000],
    'backoff doubles from retry_base (jitter pinned)',
  );
  t.ok(
    seen.some((f) => f.state === 'failing'),
    '/health says failing while the last good credentials are served',
  );

  t.ok(first503, 'a 503 once the last good credentials were too old');
  if (!first503) return;
  t.ok(goodExp - first503.at <= MARGIN_MS, 'and not before they were within the margin');
  t.equal(first503.a.body.Code, c.code, `503 Code is ${c.code}`);
  t.match(String(first503.a.body.Message), c.message, 'Message names the failure');
  t.match(String(first503.a.body.Message), new RegExp(`profile ${profile}\\b`), 'and the profile');
  t.notOk('AccessKeyId' in first503.a.body || 'Token' in first503.a.body, 'no credentials in the 503');
  t.same(
    later.map((a) => a.body.Code),
    [c.code, c.code],
    'later requests: 503 with the same Code',
  );
  const h = await s.health();
  t.equal(h.httpStatus, 503, '/health answers 503');
  t.equal(h.profiles[profile]?.state, 'unavailable');
  t.equal(h.profiles[profile]?.lastError?.code, c.code);
  const imds = await s.imds();
  t.equal(imds.status, 503, 'IMDS: 503 too');
  t.equal(imds.body.Code, c.code, 'IMDS: same Code');

  // The upstream returns. The retry already scheduled is at most one backoff step away.
  await c.end(s);
  const next = Date.parse(h.profiles[profile]?.nextRefresh ?? '');
  t.ok(next > s.clock.now() && next - s.clock.now() <= RETRY_MAX_MS, 'a retry is scheduled within one backoff step');
  const callsBefore = s.upstreamCalls();
  await s.advanceTo(next);
  t.equal(s.upstreamCalls() - callsBefore, 1, 'one upstream call brought recovery');
  const back = (await s.health()).profiles[profile];
  t.equal(back?.state, 'ok', 'recovered at the scheduled retry');
  t.equal(back?.consecutiveFailures, 0);
  t.equal(back?.lastError, null);
  const fresh = await s.ecs(profile);
  t.equal(fresh.status, 200, 'credentials again');
  t.same(credentialProblems(fresh.body, s.clock.now(), MARGIN_MS), [], 'complete and fresh');
  t.not(fields(fresh.body), goodId, 'new credentials');
  t.equal(s.issued(fields(fresh.body))?.sessionToken, fresh.body.Token, 'issued by the emulator');
}

const error = (status: number, code: string, message: string) => ({ kind: 'error' as const, status, code, message });

const CASES: OutageCase[] = [];
for (const service of ['sts', 'rolesanywhere'] as const) {
  const sts = service === 'sts';
  const who = sts ? 'STS' : 'Roles Anywhere';
  const fault = (f: Parameters<FaultStack['emulator']['setFault']>[0]) => (s: FaultStack) => s.emulator.setFault(f, { service });
  const clear = (s: FaultStack) => s.emulator.setFault(null);
  CASES.push(
    {
      name: 'connection reset',
      service,
      begin: fault({ kind: 'unavailable' }),
      end: clear,
      code: 'UpstreamUnreachable',
      message: new RegExp(`cannot reach ${who}`),
    },
    {
      name: 'connection refused (upstream down, then back on the same port)',
      service,
      begin: (s) => s.stopEmulator(),
      end: (s) => s.restartEmulator(),
      code: 'UpstreamUnreachable',
      message: /ECONNREFUSED/,
    },
    // Ten-minute credentials: each attempt costs the request timeout in real time, so fewer attempts.
    {
      name: 'slower than the request timeout',
      service,
      lifetimeSeconds: 600,
      timeoutMs: SHORT_TIMEOUT_MS,
      begin: fault({ kind: 'delay', ms: 10 * SHORT_TIMEOUT_MS }),
      end: clear,
      code: 'UpstreamTimeout',
      message: new RegExp(`${who} did not answer in time`),
    },
    sts
      ? {
          name: '5xx',
          service,
          begin: fault({ ...error(500, 'InternalFailure', 'injected: internal failure'), type: 'Receiver' }),
          end: clear,
          code: 'InternalFailure',
          message: /injected: internal failure/,
        }
      : {
          name: '5xx',
          service,
          begin: fault(error(500, 'InternalServerException', 'injected: internal failure')),
          end: clear,
          code: 'InternalServerException',
          message: /injected: internal failure/,
        },
    sts
      ? {
          name: '503',
          service,
          begin: fault({ ...error(503, 'ServiceUnavailable', 'injected: service unavailable'), type: 'Receiver' }),
          end: clear,
          code: 'ServiceUnavailable',
          message: /injected: service unavailable/,
        }
      : {
          name: '503',
          service,
          begin: fault(error(503, 'ServiceUnavailableException', 'injected: service unavailable')),
          end: clear,
          code: 'ServiceUnavailableException',
          message: /injected: service unavailable/,
        },
    sts
      ? {
          name: 'throttling',
          service,
          begin: fault(error(400, 'Throttling', 'Rate exceeded')),
          end: clear,
          code: 'Throttling',
          message: /Rate exceeded/,
        }
      : {
          name: 'throttling',
          service,
          begin: fault(error(429, 'ThrottlingException', 'Rate exceeded')),
          end: clear,
          code: 'ThrottlingException',
          message: /Rate exceeded/,
        },
    {
      name: 'malformed body',
      service,
      begin: fault({ kind: 'malformed' }),
      end: clear,
      code: 'MalformedResponse',
      message: /could not be read/,
    },
    {
      name: 'truncated body',
      service,
      begin: fault({ kind: 'truncated' }),
      end: clear,
      code: 'MalformedResponse',
      message: /could not be read|incomplete|truncated/,
    },
    {
      name: 'credentials already expired (lifetime 0)',
      service,
      begin: (s) => s.emulator.setCredentialLifetime(0),
      end: (s) => s.emulator.setCredentialLifetime(null),
      code: 'ExpiredCredentials',
      message: /expiry margin/,
    },
    {
      name: 'credentials expired an hour ago (lifetime -3600)',
      service,
      begin: (s) => s.emulator.setCredentialLifetime(-3600),
      end: (s) => s.emulator.setCredentialLifetime(null),
      code: 'ExpiredCredentials',
      message: /expiry margin/,
    },
  );
}
// STS cannot correct a skewed clock (the call is unsigned; the JWT carries the device's time): the
// token is refused, and the guarantees are those of any other outage. Recovery: the clocks agree again.
CASES.push(
  {
    name: 'device clock 10 min ahead of STS (token iat in the future)',
    service: 'sts',
    begin: (s) => void (s.skewMs = -10 * MIN),
    end: (s) => void (s.skewMs = 0),
    code: 'InvalidIdentityToken',
    // Depending on the second, jose reports the nbf claim or the emulator the iat claim first.
    message: /issued in the future|not valid yet/,
  },
  {
    name: 'device clock 10 min behind STS (token already expired)',
    service: 'sts',
    begin: (s) => void (s.skewMs = 10 * MIN),
    end: (s) => void (s.skewMs = 0),
    code: 'ExpiredTokenException',
    message: /expired/i,
  },
);

for (const c of CASES) {
  t.test(`${c.service}: ${c.name}`, (tt) => outage(tt, c));
}

/** Problems with served credentials judged by the service's clock, which is the one that decides whether they still work. */
function staleByService(s: FaultStack, answers: Served[]): string[] {
  return answers
    .filter(({ a }) => a.status === 200)
    .flatMap(({ a, serviceAt }) => {
      const issued = s.issued(fields(a.body));
      if (!issued) return [`${fields(a.body)} was never issued`];
      const left = issued.expiration.getTime() - serviceAt;
      return left < MARGIN_MS ? [`${fields(a.body)} served with ${left / 1000} s left by the service's clock`] : [];
    });
}

t.test('rolesanywhere: a skewed device clock is corrected by the provider; refreshes never fail', async (tt) => {
  for (const skew of [10 * MIN, -10 * MIN]) {
    const s = await startFaultStack({ services: ['rolesanywhere'], tuning: { maxAttempts: 1, requestTimeoutMs: TIMEOUT_MS } });
    tt.teardown(() => s.close());
    await s.idle();
    const refusedBefore = s.emulator.stats.rolesAnywhereFailures;
    s.skewMs = skew;
    const failures: number[] = [];
    const answers: Served[] = [];
    // Three hours in five-minute slices, checking the failure count between slices.
    for (let slice = 0; slice < 36; slice++) {
      answers.push(...(await walk(s, ['ra'], s.clock.now() + 5 * MIN, MIN)));
      failures.push(s.status('ra').consecutiveFailures);
    }
    const label = `service clock ${skew > 0 ? 'ahead of' : 'behind'} the device by 10 min`;
    tt.same([...new Set(failures)], [0], `${label}: no refresh ever failed`);
    tt.ok(
      s.emulator.stats.rolesAnywhereFailures - refusedBefore >= 1,
      `${label}: the emulator did refuse the skewed signature (and the provider re-signed)`,
    );
    tt.same(
      answers.filter(({ a }) => a.status !== 200).map(({ a }) => a.text),
      [],
      `${label}: every request got credentials`,
    );
    tt.same(
      answers.flatMap(({ a, at }) => credentialProblems(a.body, at, MARGIN_MS)),
      [],
      `${label}: complete and fresh by the device's clock`,
    );
    tt.same(staleByService(s, answers), [], `${label}: and by the service's clock`);
    tt.ok(new Set(answers.map(({ a }) => fields(a.body))).size >= 4, `${label}: refreshed on schedule throughout`);
  }
});

// A device clock behind the service's, then an outage that outlives the credentials. Expiration is the
// service's time, and the service's clock decides when they stop working. Roles Anywhere: 10 minutes off,
// which the provider has learnt from the Date header. STS: 4 minutes off, which STS still accepts (the
// 5-minute token is not yet expired by its clock), so refreshes succeed and nothing looks wrong.
for (const [service, skew] of [
  ['rolesanywhere', 10 * MIN],
  ['sts', 4 * MIN],
] as const) {
  t.test(
    `${service}: outage while the device clock is ${skew / MIN} min slow: what is served still works by the service's clock`,
    async (tt) => {
      const s = await startFaultStack({ services: [service], tuning: { maxAttempts: 1, requestTimeoutMs: TIMEOUT_MS } });
      tt.teardown(() => s.close());
      const profile = PROFILE_OF[service];
      await s.idle();
      s.skewMs = skew;
      await s.advance(HOUR); // refreshes under skew
      tt.equal(s.status(profile).consecutiveFailures, 0, 'refreshing under skew');
      s.emulator.setFault({ kind: 'unavailable' }, { service });
      const answers = await walk(s, [profile], s.clock.now() + 2 * HOUR, MIN);
      tt.ok(
        answers.some(({ a }) => a.status === 503),
        'the outage outlived the credentials',
      );
      tt.same(
        answers.flatMap(({ a, at }) => (a.status === 200 ? credentialProblems(a.body, at, MARGIN_MS) : [])),
        [],
        'by the device clock, nothing stale was served',
      );
      tt.same(staleByService(s, answers), [], 'by the service clock, nothing stale was served either');
    },
  );
}

t.test('transient throttling: fresh credentials at the next retry, no 503, nothing stale', async (tt) => {
  for (const service of ['sts', 'rolesanywhere'] as const) {
    const s = await startFaultStack({ services: [service], tuning: { maxAttempts: 1, requestTimeoutMs: TIMEOUT_MS } });
    tt.teardown(() => s.close());
    const profile = PROFILE_OF[service];
    await s.idle();
    const good = await s.ecs(profile);
    const goodId = fields(good.body);
    // Three refreshes fail, the fourth works: fresh credentials arrive 2 + 4 + 8 s after the first failure.
    s.emulator.setFault(
      service === 'sts' ? error(400, 'Throttling', 'Rate exceeded') : error(429, 'ThrottlingException', 'Rate exceeded'),
      { times: 3, service },
    );
    const scheduled = Date.parse(s.status(profile).nextRefresh ?? '');
    await s.advanceTo(scheduled);
    tt.equal(s.status(profile).consecutiveFailures, 1, `${service}: the scheduled refresh failed`);
    const during = await s.ecs(profile);
    tt.equal(fields(during.body), goodId, `${service}: last good served meanwhile`);
    await s.advanceTo(scheduled + 2000 + 4000 + 8000);
    const st = s.status(profile);
    tt.equal(st.consecutiveFailures, 0, `${service}: recovered at the third retry`);
    const after = await s.ecs(profile);
    tt.equal(after.status, 200);
    tt.not(fields(after.body), goodId, `${service}: new credentials`);
    tt.same(credentialProblems(after.body, s.clock.now(), MARGIN_MS), [], `${service}: complete and fresh`);
    tt.ok(Date.parse(String(after.body.Expiration)) - s.clock.now() > 50 * MIN, `${service}: a full lifetime ahead`);
  }
});
