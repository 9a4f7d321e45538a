/**
 * Key-token faults with the device key on SoftHSM2, under a daemon serving an aws-oidc profile (every
 * JWT signed on the token) and an aws-rolesanywhere profile (every CreateSession signed on the token)
 * on a fake clock shared with the emulator:
 *   - the token pulled out mid-run: refreshes fail with a typed key-backend code in /health
 *     (TOKEN_NOT_PRESENT or SESSION_INVALID), the last good credentials are served while valid, 503
 *     with that code once they expire, fresh credentials once the token is back: no restart;
 *   - a wrong PIN in the PIN file, noticed when the token comes back and the daemon logs in again:
 *     the same guarantees with PIN_INCORRECT (SoftHSM2 never locks its user PIN, so PIN_LOCKED is
 *     accepted too but not reached), recovery once the PIN file is corrected, and neither PIN in any
 *     log line or response body.
 * Its own file: SoftHSM2 only looks at its token directory again when the module is re-initialised,
 * which needs this process to hold no other session on it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Pkcs11Signer } from '../daemon/keys/pkcs11/signer.js';
import { MIN, HOUR, credentialProblems, startFaultStack, walk, type FaultStack, type Served } from './helpers/faults-stack.js';
import { createSoftHsm, enclaveAddon, pkcs11Tool, softhsm2, type SoftHsm } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const TOOLS = [softhsm2, pkcs11Tool, enclaveAddon];
// Not digits: a digit-only PIN could turn up by chance inside a timestamp in a log line.
const PIN = 'credport-PIN-7d1e';
const WRONG_PIN = 'wrong-PIN-3b9a';
const MARGIN_MS = 60_000;
const RETRY_MAX_MS = 300_000;
const PROFILES = ['sts', 'ra'];
const TOKEN_GONE = ['TOKEN_NOT_PRESENT', 'SESSION_INVALID'];
const BAD_PIN = ['PIN_INCORRECT', 'PIN_LOCKED'];

// Created before anything loads the PKCS#11 module: SoftHSM reads SOFTHSM2_CONF once, at C_Initialize.
const hsm: SoftHsm | undefined = TOOLS.every((x) => x.present) ? createSoftHsm({ pin: PIN, soPin: 'credport-SO-5c2f' }) : undefined;
t.teardown(() => hsm?.cleanup());
// The key is made by pkcs11-tool in its own process, so this process holds no session yet.
hsm?.pkcs11Tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'device', '--id', '01']);

async function tokenStack(h: SoftHsm, pinFile: string): Promise<FaultStack> {
  writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
  const keyOptions = { module: h.module, tokenLabel: h.tokenLabel, keyLabel: 'device', pin: { file: pinFile } };
  const signer = await Pkcs11Signer.open(keyOptions);
  return startFaultStack({
    services: ['sts', 'rolesanywhere'],
    key: {
      table: { backend: 'pkcs11', module: h.module, token_label: h.tokenLabel, key_label: 'device', pin_file: pinFile },
      signer,
      daemonOpensKey: true,
    },
    tuning: { maxAttempts: 1, requestTimeoutMs: 5000 },
  });
}

interface CodeSeen {
  profile: string;
  code: string | undefined;
  state: string;
  at: number;
}

/** Records every change of a profile's failure count as /health reports it. */
function failureRecorder(s: FaultStack, seen: CodeSeen[]): () => Promise<void> {
  // From the counts as they are now: only failures from here on are recorded.
  const last = new Map(PROFILES.map((p) => [p, s.status(p).consecutiveFailures]));
  return async () => {
    for (const profile of PROFILES) {
      const n = s.status(profile).consecutiveFailures;
      if (n === (last.get(profile) ?? 0)) continue;
      last.set(profile, n);
      const p = (await s.health()).profiles[profile];
      seen.push({ profile, code: p?.lastError?.code, state: p?.state ?? 'missing', at: s.clock.now() });
    }
  };
}

/** Checks every 200 in `answers`: the profile's last good credentials, complete, at least the margin left. */
function checkServed(t: Test, answers: Served[], good: Map<string, string>, what: string): void {
  const problems: string[] = [];
  for (const { profile, at, a } of answers) {
    if (a.status !== 200) continue;
    problems.push(...credentialProblems(a.body, at, MARGIN_MS).map((p) => `${profile}: ${p}`));
    if (a.body.AccessKeyId !== good.get(profile))
      problems.push(`${profile}: served ${String(a.body.AccessKeyId)}, not the last good credentials`);
  }
  t.same(problems, [], `${what}: every 200 carried the last good credentials, complete, at least the margin left`);
  const unexpected = answers
    .filter(({ a }) => a.status !== 200 && a.status !== 503)
    .map(({ profile, a }) => `${profile}: ${a.status} ${a.text.slice(0, 200)}`);
  t.same(unexpected, [], `${what}: nothing but 200 and 503`);
  for (const profile of PROFILES) {
    const mine = answers.filter((x) => x.profile === profile);
    const first503 = mine.findIndex(({ a }) => a.status === 503);
    t.ok(first503 > 10, `${what}: ${profile} served its last good credentials for a while (${first503} requests)`);
    t.ok(
      first503 >= 0 && mine.slice(first503).every(({ a }) => a.status === 503),
      `${what}: ${profile}: once 503, 503 until recovery (never expired credentials)`,
    );
  }
}

async function goodCredentials(t: Test, s: FaultStack): Promise<Map<string, string>> {
  await s.idle();
  const good = new Map<string, string>();
  for (const profile of PROFILES) {
    const a = await s.ecs(profile);
    t.equal(a.status, 200, `${profile}: credentials signed on the token`);
    t.same(credentialProblems(a.body, s.clock.now(), MARGIN_MS), [], `${profile}: complete and fresh`);
    good.set(profile, String(a.body.AccessKeyId));
  }
  return good;
}

/** Moves to the later of the profiles' scheduled retries and checks both recovered with new credentials. */
async function checkRecovery(t: Test, s: FaultStack, good: Map<string, string>, what: string): Promise<void> {
  const health = await s.health();
  const nexts = PROFILES.map((p) => Date.parse(health.profiles[p]?.nextRefresh ?? ''));
  t.ok(
    nexts.every((n) => n > s.clock.now() && n - s.clock.now() <= RETRY_MAX_MS),
    `${what}: retries scheduled within one backoff step`,
  );
  await s.advanceTo(Math.max(...nexts));
  const after = await s.health();
  for (const profile of PROFILES) {
    t.equal(after.profiles[profile]?.state, 'ok', `${what}: ${profile} recovered at its scheduled retry, same daemon`);
    t.equal(after.profiles[profile]?.lastError, null);
    const a = await s.ecs(profile);
    t.equal(a.status, 200, `${what}: ${profile} serves credentials again`);
    t.same(credentialProblems(a.body, s.clock.now(), MARGIN_MS), [], `${what}: ${profile}: complete and fresh`);
    t.not(a.body.AccessKeyId, good.get(profile), `${what}: ${profile}: new credentials`);
    t.equal(s.issued(String(a.body.AccessKeyId))?.sessionToken, a.body.Token, `${what}: ${profile}: issued by the emulator`);
  }
}

/** Walks until every profile has answered 503 three times (bounded by `maxMs` of fake time). */
async function walkToOutage(s: FaultStack, maxMs: number, seen: CodeSeen[]): Promise<Served[]> {
  const record = failureRecorder(s, seen);
  return walk(s, PROFILES, s.clock.now() + maxMs, MIN, async (served) => {
    await record();
    return PROFILES.every((p) => served.filter((x) => x.profile === p && x.a.status === 503).length >= 3);
  });
}

t.test('token pulled out mid-run, then put back', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS) || !hsm) return;
  const s = await tokenStack(hsm, join(hsm.dir, 'pin-removed'));
  t.teardown(() => s.close());
  const good = await goodCredentials(t, s);

  const restore = hsm.removeToken();
  const seen: CodeSeen[] = [];
  const answers = await walkToOutage(s, 3 * HOUR, seen);
  checkServed(t, answers, good, 'token gone');
  for (const profile of PROFILES) {
    const mine = seen.filter((x) => x.profile === profile);
    t.ok(mine.length >= 3, `${profile}: refreshes failed and were retried (${mine.length} failures in /health)`);
    t.same(
      [...new Set(mine.filter((x) => !TOKEN_GONE.includes(x.code ?? '')).map((x) => x.code))],
      [],
      `${profile}: /health lastError.code is ${TOKEN_GONE.join(' or ')} at every failure`,
    );
    const first503 = answers.find((x) => x.profile === profile && x.a.status === 503);
    t.ok(TOKEN_GONE.includes(String(first503?.a.body.Code)), `${profile}: the 503 Code is the token's (${String(first503?.a.body.Code)})`);
    t.match(String(first503?.a.body.Message), new RegExp(`profile ${profile}\\b`), `${profile}: the Message names the profile`);
    t.match(String(first503?.a.body.Message), /token|session/i, `${profile}: and says the token is the problem`);
  }
  const h = await s.health();
  t.equal(h.httpStatus, 503, '/health: 503 while nothing can be served');

  restore();
  await checkRecovery(t, s, good, 'token back');
});

t.test(
  'wrong PIN after the token comes back: PIN_INCORRECT, no PIN anywhere, recovery once the PIN file is fixed',
  needs(...TOOLS),
  async (t) => {
    if (!assertPresent(t, ...TOOLS) || !hsm) return;
    const pinFile = join(hsm.dir, 'pin-wrong');
    const s = await tokenStack(hsm, pinFile);
    t.teardown(() => s.close());
    const good = await goodCredentials(t, s);

    // The daemon logs in once per session; to make it log in again, the token goes away and comes back
    // (a replug), while the PIN file holds a wrong PIN.
    writeFileSync(pinFile, `${WRONG_PIN}\n`, { mode: 0o600 });
    const restore = hsm.removeToken();
    const seen: CodeSeen[] = [];
    const record = failureRecorder(s, seen);
    const gone = await walk(s, PROFILES, s.clock.now() + 2 * HOUR, MIN, async () => {
      await record();
      return PROFILES.every((p) => s.status(p).consecutiveFailures > 0);
    });
    t.ok(
      PROFILES.every((p) => s.status(p).consecutiveFailures > 0),
      'both profiles noticed the token was gone',
    );
    restore();
    const seenAfter: CodeSeen[] = [];
    const answers = [...gone, ...(await walkToOutage(s, 3 * HOUR, seenAfter))];
    checkServed(t, answers, good, 'wrong PIN');
    for (const profile of PROFILES) {
      const mine = seenAfter.filter((x) => x.profile === profile);
      t.ok(mine.length >= 3, `${profile}: refreshes failed and were retried (${mine.length} failures in /health)`);
      t.same(
        [...new Set(mine.filter((x) => !BAD_PIN.includes(x.code ?? '')).map((x) => x.code))],
        [],
        `${profile}: with the token back, /health lastError.code is ${BAD_PIN.join(' or ')} at every failure`,
      );
      const first503 = answers.find((x) => x.profile === profile && x.a.status === 503);
      t.ok(
        BAD_PIN.includes(String(first503?.a.body.Code)),
        `${profile}: the 503 Code says the PIN was refused (${String(first503?.a.body.Code)})`,
      );
      // The scenario really reached a login with the wrong PIN (and the guard that stops offering it again).
      t.match(String(first503?.a.body.Message), /PIN/, `${profile}: the Message says the PIN was refused`);
    }

    const bodies = [...answers.map((x) => x.a.text), JSON.stringify(await s.health()), (await s.imds()).text];
    for (const [name, pin] of [
      ['the PIN', PIN],
      ['the wrong PIN', WRONG_PIN],
    ] as const) {
      t.same(
        s.logs.filter((l) => l.includes(pin)),
        [],
        `${name} is in no log line (${s.logs.length} lines)`,
      );
      t.same(
        bodies.filter((b) => b.includes(pin)),
        [],
        `${name} is in no response body (${bodies.length} bodies)`,
      );
    }

    writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
    await checkRecovery(t, s, good, 'PIN file fixed');
  },
);
