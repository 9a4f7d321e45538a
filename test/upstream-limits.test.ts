/**
 * The limits on what an upstream can do, piece by piece: its error text sanitized where ProviderError
 * is built, its Date header and Expiration believed only within bounds, a fetch that never settles
 * abandoned at the refresher's deadline (so the next refresh and tick() are never blocked), a request
 * with nothing valid waiting only as long as a client would, and boundedFetch's deadline and cap on a
 * real loopback server.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { silentLogger } from '../daemon/logging/logger.js';
import { ClockSkew } from '../daemon/providers/clock-skew.js';
import { ProviderError, type CredentialProvider } from '../daemon/providers/types.js';
import type { AwsCredentials } from '../daemon/clouds/aws/credentials.js';
import { boundedFetch } from '../daemon/providers/upstream/bounded-fetch.js';
import { CallSlots } from '../daemon/providers/upstream/call-slots.js';
import { sanitizeCode, sanitizeMessage } from '../daemon/providers/upstream/error-text.js';
import { checkExpiration } from '../daemon/providers/upstream/plausibility.js';
import type { RefreshPolicy } from '../daemon/refresh/policy.js';
import { NoCredentialsError, ProfileRefresher } from '../daemon/refresh/profile-refresher.js';
import { RefreshScheduler } from '../daemon/refresh/scheduler.js';
import { refreshFailureLabel } from '../daemon/server/metrics.js';
import { FakeClock, settle } from './helpers/fake-clock.js';

const MIN = 60_000;
const policy: RefreshPolicy = {
  fraction: 0.5,
  jitter: 0.1,
  minRemainingMs: 15 * MIN,
  expiryMarginMs: MIN,
  retryBaseMs: 2000,
  retryMaxMs: 5 * MIN,
};
const JWT =
  'eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJkZXZpY2UiLCJhdWQiOiJzdHMuYW1hem9uYXdzLmNvbSJ9.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

t.test('upstream error text: bounded, one line, no escapes, no tokens', async (t) => {
  t.equal(sanitizeCode('InvalidIdentityToken'), 'InvalidIdentityToken');
  t.equal(sanitizeCode('TOKEN_NOT_PRESENT'), 'TOKEN_NOT_PRESENT');
  t.equal(sanitizeCode('C'.repeat(65)), 'UpstreamError', 'too long');
  t.equal(sanitizeCode('\u001b[31mEvil\nCode'), 'UpstreamError', 'escapes and newlines');
  t.equal(sanitizeCode('a b'), 'UpstreamError');
  const m = sanitizeMessage(`bad token ${JWT} with key ${SECRET}\n\u001b[2J\u001b[31mred\u001b[0m\r{"level":50}`);
  t.notMatch(m, /eyJ|wJalrXUtnFEMI|bPxRfiCYEXAMPLEKEY/, 'tokens redacted');
  t.notMatch(m, /[\u0000-\u001f\u007f]/, 'no control characters');
  t.match(m, /^bad token \[redacted\] with key \[redacted\] red \{"level":50\}$/);
  t.ok(sanitizeMessage('M'.repeat(10_000)).length <= 300, 'bounded');
  t.equal(
    sanitizeMessage('User: arn:aws:sts::111122223333:assumed-role/source/edge-source is not authorized'),
    'User: arn:aws:sts::111122223333:assumed-role/source/edge-source is not authorized',
    'ordinary text kept',
  );
  const path = 'certificate /tmp/credport-test-x1Y2z3/device-certificate.pem cannot be read (EACCES)';
  t.equal(sanitizeMessage(path), path, 'a temp path with a random suffix is not token-shaped');
  const arn = 'trust anchor arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555';
  t.equal(sanitizeMessage(arn), arn, 'nor an ARN');
  t.notMatch(
    sanitizeMessage(`token ${Buffer.from('a session token of some length, random enough').toString('base64')}`),
    /c2Vzc2lvbi/,
    'a base64 session token is',
  );
  const e = new ProviderError('\u001b[1m' + 'X'.repeat(100), `echo: WebIdentityToken=${JWT}`, true);
  t.equal(e.code, 'UpstreamError', 'ProviderError sanitizes its code');
  t.notMatch(e.message, /eyJ/, 'and its message');
  t.equal(refreshFailureLabel('UpstreamTimeout'), 'UpstreamTimeout');
  t.equal(refreshFailureLabel('Invented1234'), 'other', 'unknown codes share one label');
});

t.test('a Date header more than 24 h off is not believed', async (t) => {
  const skew = new ClockSkew();
  const now = Date.UTC(2026, 10, 28, 12);
  skew.observe(new Date(now + 10 * MIN).toUTCString(), now, now);
  t.ok(Math.abs(skew.ms - 10 * MIN) < 2000, 'ten minutes is learnt');
  t.throws(() => skew.observe('Thu, 01 Jan 1970 00:00:00 GMT', now, now), { code: 'ImplausibleClockSkew' });
  t.throws(() => skew.observe('Sun, 31 Dec 2190 23:59:59 GMT', now, now), { code: 'ImplausibleClockSkew' });
  t.ok(Math.abs(skew.ms - 10 * MIN) < 2000, 'the offset learnt before is kept');
  t.equal(skew.toLocal(new Date(now + 3600_000)).getUTCFullYear(), 2026, 'a one-hour credential stays in 2026');
});

t.test('an Expiration beyond the requested duration plus 5 min is not believed', async (t) => {
  const now = Date.now();
  t.doesNotThrow(() => checkExpiration('STS', new Date(now + 3600_000 + 60_000), now, 3600));
  t.throws(() => checkExpiration('STS', new Date('9999-12-31T23:59:59Z'), now, 3600), { code: 'ImplausibleExpiration' });
});

/** A provider whose fetches never settle (an upstream stalled after its headers, with no deadline of its own). */
class HangingProvider implements CredentialProvider {
  readonly unattended = true;
  calls = 0;
  aborted = 0;
  answer: (() => AwsCredentials) | undefined;
  fetch(signal?: AbortSignal): Promise<AwsCredentials> {
    this.calls += 1;
    signal?.addEventListener('abort', () => void (this.aborted += 1));
    return this.answer ? Promise.resolve(this.answer()) : new Promise<never>(() => undefined);
  }
  describe() {
    return {
      type: 'test',
      source: 'hang',
      principal: 'arn:aws:iam::111122223333:role/t',
      details: { roleArn: 'arn:aws:iam::111122223333:role/t', region: 'us-east-1' },
    };
  }
}

t.test('a fetch past its deadline is abandoned: the next refresh and tick() are not blocked', async (t) => {
  const clock = new FakeClock();
  const provider = new HangingProvider();
  const r = new ProfileRefresher({
    name: 'p',
    provider,
    policy,
    clock,
    logger: silentLogger(),
    random: () => 1,
    attemptDeadlineMs: 30_000,
    requestWaitMs: 1000,
  });
  const scheduler = new RefreshScheduler(new Map([['p', r]]), clock, 30_000);
  scheduler.start();
  t.teardown(() => scheduler.stop());
  await settle();
  t.equal(provider.calls, 1);
  t.equal(r.status().refreshing, true);
  // A cold request waits 1 s (the client's patience), then is told there is nothing.
  const waiting = r.get().then(
    () => 'served',
    (e: unknown) => (e instanceof NoCredentialsError ? e.code : 'other error'),
  );
  await clock.advance(1000);
  t.equal(await waiting, 'CredentialsUnavailable', 'a cold request gives up after the wait, not with the upstream');
  await clock.advance(29_000);
  t.equal(r.status().refreshing, false, 'abandoned at the deadline');
  t.equal(r.status().lastError?.code, 'UpstreamTimeout');
  t.equal(provider.aborted, 1, 'and cancelled');
  // The retry (2 s backoff) starts a new call rather than joining the abandoned one.
  provider.answer = () => ({
    accessKeyId: 'ASIANEW',
    secretAccessKey: 's',
    sessionToken: 't',
    expiration: new Date(clock.now() + 3600_000),
  });
  await clock.advance(5000);
  t.equal(provider.calls, 2, 'a new upstream call');
  t.equal((await r.get()).accessKeyId, 'ASIANEW', 'and it serves');
});

t.test('the refresher refuses an Expiration no upstream gives, and schedules nothing absurd', async (t) => {
  const clock = new FakeClock();
  const provider = new HangingProvider();
  provider.answer = () => ({
    accessKeyId: 'ASIAFAR',
    secretAccessKey: 's',
    sessionToken: 't',
    expiration: new Date('9999-12-31T23:59:59Z'),
  });
  const r = new ProfileRefresher({ name: 'p', provider, policy, clock, logger: silentLogger(), random: () => 1 });
  await t.rejects(r.refreshNow(), { code: 'ImplausibleExpiration' });
  t.equal(r.hasValidCredentials(), false, 'nothing held');
  t.ok(Date.parse(r.status().nextRefresh ?? '') - clock.now() <= policy.retryMaxMs, 'the next attempt is a retry, not the year 5835');
});

t.test('boundedFetch: one deadline for headers and body, a cap while streaming', async (t) => {
  const open = new Set<ServerResponse>();
  let written = 0;
  const server = createServer((req, res) => {
    open.add(res);
    if (req.url === '/stall') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'.repeat(200));
      return;
    }
    res.writeHead(200);
    // Bounded: at most 64 MiB offered, stopped as soon as the client leaves.
    const chunk = Buffer.alloc(64 * 1024);
    let closed = false;
    res.on('close', () => void (closed = true));
    const pump = (): void => {
      for (let i = 0; i < 1024 && !closed; i++) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!closed) res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const res of open) res.destroy();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await t.rejects(
    boundedFetch(
      `${base}/stall`,
      { method: 'GET', headers: {} },
      { service: 'Test', limits: { deadlineMs: 300, maxBodyBytes: 256 * 1024 } },
    ),
    {
      code: 'UpstreamTimeout',
      message: /Test did not answer in time/,
    },
  );
  await t.rejects(
    boundedFetch(
      `${base}/flood`,
      { method: 'GET', headers: {} },
      { service: 'Test', limits: { deadlineMs: 10_000, maxBodyBytes: 256 * 1024 } },
    ),
    { code: 'ResponseTooLarge' },
  );
  t.ok(written < 64 * 1024 * 1024, `the flood was cut off (${written} bytes written)`);
  const cancel = new AbortController();
  const cancelled = boundedFetch(
    `${base}/stall`,
    { method: 'GET', headers: {} },
    { service: 'Test', limits: { deadlineMs: 10_000, maxBodyBytes: 1024 }, signal: cancel.signal },
  );
  cancel.abort();
  await t.rejects(cancelled, { code: 'Aborted' });
  // Cancelled before it starts (a refresher stopped mid-retry): Aborted, and the request's own abort
  // error must not surface as an unhandled rejection (tap fails the file if it does).
  await t.rejects(
    boundedFetch(
      `${base}/stall`,
      { method: 'GET', headers: {} },
      { service: 'Test', limits: { deadlineMs: 10_000, maxBodyBytes: 1024 }, signal: AbortSignal.abort() },
    ),
    { code: 'Aborted' },
  );
  await new Promise((r) => setTimeout(r, 50));
});

t.test('call slots: at most N upstream calls at once, in order, a cancelled waiter leaves the queue', async (t) => {
  const slots = new CallSlots(2);
  const a = await slots.acquire();
  const b = await slots.acquire();
  const order: string[] = [];
  const c = slots.acquire().then((r) => (order.push('c'), r));
  const cancel = new AbortController();
  const d = slots.acquire(cancel.signal);
  const e = slots.acquire().then((r) => (order.push('e'), r));
  t.equal(slots.waiting, 3, 'three wait while two hold a slot');
  cancel.abort(new Error('stopped'));
  await t.rejects(d, /stopped/, 'a cancelled waiter is rejected');
  t.equal(slots.waiting, 2, 'and leaves the queue');
  a();
  a(); // releasing twice frees one slot only
  const releaseC = await c;
  t.same(order, ['c'], 'the first waiter gets the freed slot');
  t.equal(slots.waiting, 1, 'the other still waits: a double release freed nothing more');
  b();
  const releaseE = await e;
  t.same(order, ['c', 'e'], 'then the next, in order');
  releaseC();
  releaseE();
  const f = await slots.acquire();
  const g = await slots.acquire();
  t.equal(slots.waiting, 0, 'all slots free again');
  f();
  g();
});

t.test('every upstream call names credport in User-Agent, unless the caller set one', async (t) => {
  const seen: Array<string | undefined> = [];
  const server = createServer((req, res) => {
    seen.push(req.headers['user-agent']);
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const limits = { deadlineMs: 5000, maxBodyBytes: 1024 };
  await boundedFetch(url, { method: 'GET', headers: {} }, { service: 'test', limits });
  await boundedFetch(url, { method: 'GET', headers: { 'User-Agent': 'caller/1' } }, { service: 'test', limits });
  t.match(seen[0], /^credport\/\d+\.\d+\.\d+ node\/\d+/, 'credport and its version');
  t.equal(seen[1], 'caller/1', "the caller's own is kept, not doubled");
});
