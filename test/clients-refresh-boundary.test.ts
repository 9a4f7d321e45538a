// Clients across refreshes, in real time, with credentials short enough that a test sees many of them:
// a client never receives credentials that are expired or inside the daemon's expiry margin, and it
// receives the new ones as they come; a crowd of requests on a cold profile costs one STS call; and
// with STS down the last good credentials are served until they are too old, then a 503 with the
// upstream's reason, then fresh credentials once STS is back.

import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromHttp } from '@aws-sdk/credential-providers';
import { startStack, type Stack } from './helpers/stack.js';
import { assertIssued, containerUri, daemonUrl, forgetAwsEnvironment, imdsCredentials, type ClientCredentials } from './helpers/clients.js';

forgetAwsEnvironment();

const LIFETIME_SECONDS = 8;
const MARGIN_SECONDS = 2;
const MARGIN_MS = MARGIN_SECONDS * 1000;
// Refresh settings scaled to 8-second credentials: refresh at 40-50% of the lifetime (the default
// fraction and jitter), a request finding under 4 s left waits for a refresh, under 2 s counts as expired.
const SHORT = { expiry_margin_seconds: MARGIN_SECONDS, min_remaining_seconds: 4 };

async function shortLivedStack(refresh: Record<string, unknown> = {}): Promise<Stack> {
  return startStack({ beforeStart: (e) => e.setCredentialLifetime(LIFETIME_SECONDS), refresh: { ...SHORT, ...refresh } });
}

interface Received {
  via: 'fromHttp' | 'imds';
  creds: ClientCredentials & { expiration: string };
  /** When the client had them (ms). */
  at: number;
}

/** The JS SDK's container provider, new for each call so nothing is cached on the client side. */
async function viaFromHttp(stack: Stack): Promise<Received> {
  const c = await fromHttp({
    awsContainerCredentialsFullUri: containerUri(stack),
    awsContainerAuthorizationToken: stack.token(),
    maxRetries: 0,
  })();
  const at = Date.now();
  if (!c.expiration || !c.sessionToken) throw new Error('fromHttp returned credentials without expiration or session token');
  return {
    via: 'fromHttp',
    at,
    creds: {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiration: c.expiration.toISOString(),
    },
  };
}

/** The IMDSv2 flow as raw HTTP (token PUT, then the role's credentials). */
async function viaImds(stack: Stack): Promise<Received> {
  const { status, body } = await imdsCredentials(daemonUrl(stack));
  const at = Date.now();
  const { AccessKeyId: id, SecretAccessKey: secret, Token: token, Expiration: expiration } = body;
  if (
    status !== 200 ||
    typeof id !== 'string' ||
    typeof secret !== 'string' ||
    typeof token !== 'string' ||
    typeof expiration !== 'string'
  ) {
    throw new Error(`IMDS answered ${status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return { via: 'imds', at, creds: { accessKeyId: id, secretAccessKey: secret, sessionToken: token, expiration } };
}

interface EcsAnswer {
  status: number;
  body: Record<string, unknown>;
  sentAt: number;
  at: number;
}

async function ecsGet(stack: Stack): Promise<EcsAnswer> {
  const sentAt = Date.now();
  const res = await fetch(containerUri(stack), { headers: { authorization: stack.token() } });
  const text = await res.text();
  const at = Date.now();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { unparsed: text };
  }
  return { status: res.status, body, sentAt, at };
}

function ecsCreds(a: EcsAnswer): ClientCredentials & { expiration: string } {
  const { AccessKeyId: id, SecretAccessKey: secret, Token: token, Expiration: expiration } = a.body;
  if (typeof id !== 'string' || typeof secret !== 'string' || typeof token !== 'string' || typeof expiration !== 'string') {
    throw new Error(`not a credentials body: ${JSON.stringify(a.body).slice(0, 300)}`);
  }
  return { accessKeyId: id, secretAccessKey: secret, sessionToken: token, expiration };
}

t.test('across ~20 s of refreshes, clients only ever receive credentials with at least the margin left', async (tt: Test) => {
  const stack = await shortLivedStack();
  tt.teardown(() => stack.close());

  const received: Received[] = [];
  const errors: string[] = [];
  const started = Date.now();
  // Bounded both ways: 20 s of real time, and at most 400 rounds whatever the clock does.
  for (let round = 0; round < 400 && Date.now() - started < 20_000; round++) {
    for (const get of [viaFromHttp, viaImds]) {
      try {
        received.push(await get(stack));
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    await sleep(100);
  }

  tt.same(errors, [], 'every request got credentials (no error while refreshing)');
  tt.ok(received.length >= 40, `clients fetched throughout the run (${received.length} answers)`);

  // One assertion per kind of property (not per answer), each listing what broke it.
  const tooOld = received.filter((r) => new Date(r.creds.expiration).getTime() - r.at < MARGIN_MS);
  tt.same(
    tooOld.map((r) => `${r.via}: ${r.creds.accessKeyId} expiring ${r.creds.expiration}, received ${new Date(r.at).toISOString()}`),
    [],
    `every received Expiration was at least ${MARGIN_SECONDS} s in the future when the client got it`,
  );
  const notIssued = received.filter((r) => {
    const issued = stack.emulator.issued(r.creds.accessKeyId);
    return (
      !issued ||
      issued.secretAccessKey !== r.creds.secretAccessKey ||
      issued.sessionToken !== r.creds.sessionToken ||
      issued.expiration.getTime() !== new Date(r.creds.expiration).getTime()
    );
  });
  tt.same(
    notIssued.map((r) => `${r.via}: ${r.creds.accessKeyId}`),
    [],
    'every credential a client received is exactly one the emulator issued',
  );

  const ids = new Set(received.map((r) => r.creds.accessKeyId));
  // 8-second credentials are replaced every 3-4 s, so 20 s holds five or more; three is a safe floor.
  tt.ok(ids.size >= 3, `the access key changed over time as credentials were refreshed (${ids.size} distinct)`);
  for (const via of ['fromHttp', 'imds'] as const) {
    const own = new Set(received.filter((r) => r.via === via).map((r) => r.creds.accessKeyId));
    tt.ok(own.size >= 3, `${via} saw the refreshed credentials too (${own.size} distinct)`);
  }
});

t.test('200 concurrent requests on a cold profile cost exactly one STS call', async (tt: Test) => {
  // The first STS answer is held back, so the whole crowd arrives while the start-up fetch is in flight;
  // the start does not wait for it (firstFetchWaitMs 0), and is over long before it comes. The requests
  // may wait for it (requestWaitMs) well past the delay.
  const stack = await startStack({
    firstFetchWaitMs: 0,
    tuning: { requestWaitMs: 10_000 },
    beforeStart: (e) => e.setFault({ kind: 'delay', ms: 1500 }, { times: 1 }),
  });
  tt.teardown(() => stack.close());
  const refresher = stack.daemon?.scheduler.get('default');
  tt.ok(refresher, 'the default profile has a refresher');
  tt.notOk(refresher?.hasValidCredentials(), 'the profile is cold: no credentials yet');
  tt.ok(refresher?.status().refreshing, 'its first fetch is in flight');

  const answers = await Promise.all(Array.from({ length: 200 }, () => ecsGet(stack)));
  tt.same(
    answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${JSON.stringify(a.body)}`),
    [],
    'all 200 requests were answered 200',
  );
  const ids = new Set(answers.filter((a) => a.status === 200).map((a) => ecsCreds(a).accessKeyId));
  tt.equal(ids.size, 1, 'all 200 got the same access key');
  const first = answers[0];
  if (first?.status === 200) assertIssued(tt, stack, ecsCreds(first), 'the shared credentials');
  tt.equal(stack.emulator.stats.stsCalls, 1, 'the emulator saw exactly one STS call');
});

t.test('STS down: last good credentials until they are too old, then 503 {Code, Message}, then recovery', async (tt: Test) => {
  // Retries every 0.25-1 s, so recovery after the fault clears is seen within a second or so rather
  // than after the default backoff of up to five minutes.
  const stack = await shortLivedStack({ retry_base_seconds: 0.25, retry_max_seconds: 1 });
  tt.teardown(() => stack.close());

  const first = await ecsGet(stack);
  tt.equal(first.status, 200, 'credentials before the outage');
  if (first.status !== 200) return;
  const good = ecsCreds(first);
  assertIssued(tt, stack, good, 'the last good credentials');
  const goodExpiresAt = new Date(good.expiration).getTime();

  stack.emulator.setFault({ kind: 'unavailable' });
  const servedLastGood: Array<EcsAnswer & { failuresBefore: number }> = [];
  let unavailable: EcsAnswer | undefined;
  // Bounded: the credentials live 8 s, so the 503 is due within that; allow twice as long, 200 polls.
  const outageStarted = Date.now();
  for (let i = 0; i < 200 && Date.now() - outageStarted < 2 * LIFETIME_SECONDS * 1000; i++) {
    const failuresBefore = stack.emulator.stats.stsFailures;
    const a = await ecsGet(stack);
    if (a.status === 200) {
      servedLastGood.push({ ...a, failuresBefore });
    } else {
      unavailable = a;
      break;
    }
    await sleep(100);
  }

  tt.ok(servedLastGood.length > 0, 'credentials were served during the outage');
  tt.same(
    servedLastGood.map((a) => ecsCreds(a).accessKeyId).filter((id) => id !== good.accessKeyId),
    [],
    'what was served during the outage was the last good credentials',
  );
  tt.ok(
    servedLastGood.some((a) => a.failuresBefore > 0),
    'the last good credentials were served after a refresh had already failed',
  );
  // The daemon's rule is "more than the margin left when it answers"; it answers after the request is
  // sent, so measuring from the send time checks exactly that rule, whatever the transit time.
  tt.same(
    servedLastGood.filter((a) => goodExpiresAt - a.sentAt <= MARGIN_MS).map((a) => new Date(a.sentAt).toISOString()),
    [],
    `no request was served the last good credentials with ${MARGIN_SECONDS} s or less left`,
  );
  tt.same(
    servedLastGood.filter((a) => goodExpiresAt <= a.at).map((a) => new Date(a.at).toISOString()),
    [],
    'no client received them expired',
  );

  tt.ok(unavailable, 'once the credentials were too old, the daemon stopped serving them');
  if (!unavailable) return;
  tt.equal(unavailable.status, 503, 'the ECS endpoint answers 503');
  tt.match(unavailable.body, { Code: /\S/, Message: /\S/ }, 'with a JSON {Code, Message} body');
  // The emulator's 'unavailable' fault drops the connection; the body says so rather than a generic error.
  tt.equal(unavailable.body.Code, 'UpstreamUnreachable', 'whose Code is the reason the last refresh failed');
  tt.notOk('AccessKeyId' in unavailable.body, 'and no credentials');
  // The daemon decided before the answer arrived, so had it refused while more than the margin was
  // left, the answer would have arrived before expiry minus the margin.
  tt.ok(unavailable.at >= goodExpiresAt - MARGIN_MS, 'the 503 came only once the last good credentials were within the margin');
  const imds = await imdsCredentials(daemonUrl(stack));
  tt.equal(imds.status, 503, 'the IMDS endpoint does not serve them either');
  tt.equal(imds.body.Code, unavailable.body.Code, 'and gives the same reason');

  stack.emulator.setFault(null);
  let recovered: EcsAnswer | undefined;
  const otherwise: string[] = [];
  const recoveryStarted = Date.now();
  // Bounded: retries come every 0.25-1 s; allow 10 s and 100 polls.
  for (let i = 0; i < 100 && Date.now() - recoveryStarted < 10_000; i++) {
    const a = await ecsGet(stack);
    if (a.status === 200) {
      recovered = a;
      break;
    }
    if (a.status !== 503) otherwise.push(`${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
    await sleep(100);
  }
  tt.same(otherwise, [], 'until recovery every answer was 503 (never expired credentials)');
  tt.ok(recovered, 'credentials are served again once STS is back');
  if (!recovered) return;
  const fresh = ecsCreds(recovered);
  tt.not(fresh.accessKeyId, good.accessKeyId, 'they are new credentials');
  assertIssued(tt, stack, fresh, 'the credentials after recovery');
  tt.ok(new Date(fresh.expiration).getTime() - recovered.at >= MARGIN_MS, 'with at least the margin left');
});
