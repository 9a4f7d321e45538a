/**
 * The refresher's promises, driven by a fake clock and a scripted provider:
 * schedule by lifetime fraction, single flight, backoff, last-good serving,
 * never expired, recovery, wake-from-sleep.
 */
import t from 'tap';
import { silentLogger } from '../daemon/logging/logger.js';
import { ProviderError, type CredentialProvider } from '../daemon/providers/types.js';
import type { AwsCredentials } from '../daemon/clouds/aws/credentials.js';
import { demandThresholdMs, retryDelayMs, scheduledRefreshAt, type RefreshPolicy } from '../daemon/refresh/policy.js';
import { NoCredentialsError, ProfileRefresher } from '../daemon/refresh/profile-refresher.js';
import { RefreshScheduler } from '../daemon/refresh/scheduler.js';
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

/** A provider whose answers the test scripts; it counts calls and can hold them open. */
class ScriptedProvider implements CredentialProvider {
  unattended = true;
  calls = 0;
  lifetimeMs = 60 * MIN;
  failWith: ProviderError | undefined;
  gate: Promise<void> | undefined;
  constructor(private readonly clock: FakeClock) {}
  async fetch(): Promise<AwsCredentials> {
    this.calls += 1;
    const n = this.calls;
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    return {
      accessKeyId: `ASIAFAKE${String(n).padStart(8, '0')}`,
      secretAccessKey: `secret-${n}`,
      sessionToken: `token-${n}`,
      expiration: new Date(this.clock.now() + this.lifetimeMs),
    };
  }
  describe() {
    return {
      type: 'test',
      source: 'script',
      principal: 'arn:aws:iam::111122223333:role/t',
      details: { roleArn: 'arn:aws:iam::111122223333:role/t', region: 'us-east-1' },
    };
  }
}

function setup(random = () => 0.5) {
  const clock = new FakeClock();
  const provider = new ScriptedProvider(clock);
  const r = new ProfileRefresher({ name: 'p', provider, policy, clock, logger: silentLogger(), random });
  return { clock, provider, r };
}

t.test('policy: one-hour credentials are refreshed with 30-36 minutes left', async (t) => {
  for (const rnd of [0, 0.5, 1]) {
    const at = scheduledRefreshAt(policy, 0, 60 * MIN, () => rnd);
    const left = 60 * MIN - at;
    t.ok(left >= 30 * MIN && left <= 36 * MIN, `random ${rnd}: ${left / MIN} min left`);
  }
  t.equal(demandThresholdMs(policy, 0, 60 * MIN), 15 * MIN, 'demand threshold capped at min_remaining');
  t.equal(demandThresholdMs(policy, 0, 10 * MIN), 5 * MIN, 'short credentials: half their lifetime');
  const delays = [1, 2, 3, 10, 50].map((f) => retryDelayMs(policy, f, () => 1));
  t.same(delays.slice(0, 3), [2000, 4000, 8000], 'retry delay doubles');
  t.equal(delays[4], policy.retryMaxMs, 'retry delay capped');
  t.ok(retryDelayMs(policy, 1, () => 0) >= 1000, 'jitter never makes the delay zero');
});

t.test('fetches at start and refreshes on schedule, before any SDK window', async (t) => {
  const { clock, provider, r } = setup();
  r.start();
  await settle();
  t.equal(provider.calls, 1, 'fetched at start');
  const first = await r.get();
  const refreshAt = r.status().nextRefresh;
  t.ok(refreshAt, 'next refresh scheduled');
  const leftAtRefresh = first.expiration.getTime() - new Date(refreshAt!).getTime();
  t.ok(leftAtRefresh >= 30 * MIN, `refresh planned with ${leftAtRefresh / MIN} min left`);
  await clock.advance(new Date(refreshAt!).getTime() - clock.now() + 1);
  t.equal(provider.calls, 2, 'refreshed when scheduled');
  const second = await r.get();
  t.not(second.accessKeyId, first.accessKeyId, 'serves the new credentials');
  t.equal(r.status().state, 'ok');
  r.stop();
});

t.test('200 concurrent requests on a cold profile make exactly one upstream call', async (t) => {
  const { provider, r } = setup();
  let open!: () => void;
  provider.gate = new Promise<void>((res) => (open = res));
  const all = Array.from({ length: 200 }, () => r.get());
  await settle();
  t.equal(provider.calls, 1, 'one call in flight');
  open();
  const got = await Promise.all(all);
  t.equal(new Set(got.map((c) => c.accessKeyId)).size, 1, 'everyone got the same credentials');
  t.equal(provider.calls, 1, 'still one call');
  r.stop();
});

t.test('upstream down: last good served while valid, then 503-style error, never expired; recovery', async (t) => {
  const { clock, provider, r } = setup();
  r.start();
  await settle();
  const good = await r.get();
  provider.failWith = new ProviderError('IDPCommunicationError', 'issuer unreachable', true, 400);
  // Walk time in 1-minute steps to 30 s before expiry: always the last good credentials.
  let served = 0;
  while (clock.now() < good.expiration.getTime() - policy.expiryMarginMs - MIN) {
    await clock.advance(MIN);
    const c = await r.get();
    t.equal(c.accessKeyId, good.accessKeyId);
    t.ok(c.expiration.getTime() - clock.now() > policy.expiryMarginMs, 'not within the expiry margin');
    served++;
  }
  t.ok(served > 30, 'served last good credentials through the outage');
  const failuresSoFar = provider.calls;
  t.ok(failuresSoFar > 2, `retried meanwhile (${failuresSoFar} calls)`);
  t.equal(r.status().state, 'failing');
  t.equal(r.status().lastError?.code, 'IDPCommunicationError');
  await clock.advance(2 * MIN);
  const err = await r.get().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, NoCredentialsError, 'no valid credentials: error instead of expired ones');
  t.equal((err as NoCredentialsError).code, 'IDPCommunicationError', 'carries the upstream code');
  t.match((err as NoCredentialsError).message, /issuer unreachable/);
  t.equal(r.status().state, 'unavailable');
  // Requests during backoff do not hammer the upstream.
  const before = provider.calls;
  for (let i = 0; i < 20; i++) await r.get().catch(() => undefined);
  t.ok(provider.calls - before <= 1, 'requests in backoff make at most one upstream call');
  // Upstream returns: recovery within one backoff step.
  provider.failWith = undefined;
  await clock.advance(policy.retryMaxMs + 1000);
  const back = await r.get();
  t.not(back.accessKeyId, good.accessKeyId, 'recovered with new credentials');
  t.equal(r.status().state, 'ok');
  t.equal(r.status().consecutiveFailures, 0);
  r.stop();
});

t.test('backoff grows exponentially and is visible in status', async (t) => {
  const { clock, provider, r } = setup(() => 1);
  provider.failWith = new ProviderError('Throttling', 'Rate exceeded', true, 400);
  r.start();
  await settle();
  const gaps: number[] = [];
  let last = clock.now();
  for (let i = 0; i < 5; i++) {
    const next = new Date(r.status().nextRefresh!).getTime();
    gaps.push(next - last);
    await clock.advance(next - clock.now());
    last = next;
  }
  t.same(gaps, [2000, 4000, 8000, 16000, 32000], 'delays double');
  t.equal(r.status().consecutiveFailures, 6);
  t.equal(r.status().state, 'unavailable');
  r.stop();
});

t.test('upstream returning already-expired credentials is a failure, not something to serve', async (t) => {
  const { provider, r } = setup();
  provider.lifetimeMs = 30_000; // inside the 60 s margin
  const err = await r.get().catch((e: unknown) => e);
  t.type(err, NoCredentialsError);
  t.equal((err as NoCredentialsError).code, 'ExpiredCredentials');
  r.stop();
});

t.test('after sleeping past expiry, the first request waits for fresh credentials', async (t) => {
  const { clock, provider, r } = setup();
  r.start();
  await settle();
  const before = await r.get();
  clock.jump(2 * 60 * MIN); // timers did not fire: the machine was asleep
  const after = await r.get();
  t.not(after.accessKeyId, before.accessKeyId);
  t.ok(after.expiration.getTime() > clock.now() + 30 * MIN);
  t.equal(provider.calls, 2);
  r.stop();
});

t.test('the watchdog catches an overdue refresh after a clock jump', async (t) => {
  const clock = new FakeClock();
  const provider = new ScriptedProvider(clock);
  const r = new ProfileRefresher({ name: 'p', provider, policy, clock, logger: silentLogger(), random: () => 0.5 });
  const s = new RefreshScheduler(new Map([['p', r]]), clock, 30_000);
  s.start();
  await settle();
  t.equal(provider.calls, 1);
  clock.jump(50 * MIN); // past the scheduled refresh, but its timer has not fired
  await clock.advance(30_000); // the watchdog's next tick
  t.ok(provider.calls >= 2, 'refreshed by the watchdog');
  s.stop();
});

t.test('below the demand threshold a request waits for the refresh; if it fails, last good is served', async (t) => {
  const { clock, provider, r } = setup();
  r.start();
  await settle();
  const good = await r.get();
  r.stop(); // no scheduled refreshes: only demand
  clock.jump(50 * MIN); // 10 minutes left, below the 15-minute threshold
  provider.failWith = new ProviderError('InternalFailure', 'boom', true, 500);
  const c = await r.get();
  t.equal(c.accessKeyId, good.accessKeyId, 'refresh failed: last good served');
  t.equal(provider.calls, 2, 'a refresh was attempted');
  provider.failWith = undefined;
  await clock.advance(5 * MIN);
  const fresh = await r.get();
  t.not(fresh.accessKeyId, good.accessKeyId, 'after the backoff, a request triggers a successful refresh');
});

t.test('a key that needs a person present: no unattended refresh, fetched on demand only', async (t) => {
  const { clock, provider, r } = setup();
  provider.unattended = false;
  r.start();
  await settle();
  t.equal(provider.calls, 0, 'nothing fetched at start');
  t.equal(r.status().refresh, 'on-demand');
  t.equal(clock.pendingTimers(), 0, 'no timer');
  const c = await r.get();
  t.equal(provider.calls, 1, 'fetched when asked');
  t.equal(r.status().nextRefresh, null, 'no scheduled refresh');
  t.equal(clock.pendingTimers(), 0, 'still no timer');
  await clock.advance(50 * MIN);
  t.equal(provider.calls, 1, 'no refresh while nobody asks');
  t.not((await r.get()).accessKeyId, c.accessKeyId, 'below the demand threshold, the next request refreshes');
  r.stop();
});
