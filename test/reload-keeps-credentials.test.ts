/**
 * A reload never throws away credentials that are still valid: a profile whose definition changed
 * serves what it holds until the new definition has produced credentials (here during an STS outage,
 * so it cannot), and a reload that changes only [refresh] keeps what is held and makes no upstream call.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'smol-toml';
import t from 'tap';
import { loadConfig } from '../daemon/config/load.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { startStack, type Stack } from './helpers/stack.js';

async function ecs(s: Stack): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.daemon!.url}/v1/credentials`, { headers: { authorization: s.token() }, signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function rewrite(s: Stack, edit: (cfg: Record<string, Record<string, unknown>>) => void): void {
  const cfg = parse(readFileSync(s.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  edit(cfg);
  writeFileSync(s.configFile, stringify(cfg));
}

t.test('reload during an STS outage keeps serving the held credentials', async (t) => {
  const sts = await startHostileUpstream();
  t.teardown(() => sts.close());
  const s = await startStack({ profiles: { default: { sts_endpoint: sts.url } }, beforeStart: (e) => void (sts.target = e.url) });
  t.teardown(() => s.close());
  const first = await ecs(s);
  t.equal(first.status, 200);
  const callsAtStart = sts.received.length;

  // [refresh] only: nothing about the credentials changed.
  rewrite(s, (cfg) => void (cfg.refresh = { ...cfg.refresh, retry_base_seconds: 3 }));
  const tuned = s.daemon!.reload(loadConfig(s.configFile, process.env));
  t.same(tuned.changed, [], 'a [refresh] change changes no profile');
  const afterTuning = await ecs(s);
  t.equal(afterTuning.body.AccessKeyId, first.body.AccessKeyId, 'same credentials after a [refresh] reload');
  t.equal(sts.received.length, callsAtStart, 'and no upstream call for it');

  // An outage, then a changed definition.
  sts.mode = { kind: 'error', status: 503, code: 'ServiceUnavailable', message: 'injected outage' };
  rewrite(s, (cfg) => {
    const profiles = cfg.profiles as Record<string, Record<string, unknown>>;
    profiles.default = { ...profiles.default, duration_seconds: 1800 };
  });
  const changed = s.daemon!.reload(loadConfig(s.configFile, process.env));
  t.same(changed.changed, ['default'], 'the profile changed');
  const during = await ecs(s);
  t.equal(during.status, 200, 'still served during the outage');
  t.equal(during.body.AccessKeyId, first.body.AccessKeyId, 'with the credentials held before the reload');
  // Bounded poll until the new definition's first fetch has failed; the held credentials still serve.
  const r = s.daemon!.scheduler.get('default')!;
  for (let i = 0; i < 100 && (r.status().refreshing || r.status().lastError === null); i++) await new Promise((res) => setTimeout(res, 50));
  t.equal(r.status().lastError?.code, 'ServiceUnavailable', 'the new definition tried and failed');
  t.equal(r.status().state, 'failing', 'failing, but serving');
  const stillServed = await ecs(s);
  t.equal(stillServed.status, 200);
  t.equal(stillServed.body.AccessKeyId, first.body.AccessKeyId);

  // STS is back: the new definition produces its own credentials.
  sts.mode = { kind: 'pass' };
  await r.refreshNow();
  const fresh = await ecs(s);
  t.equal(fresh.status, 200);
  t.not(fresh.body.AccessKeyId, first.body.AccessKeyId, 'new credentials once STS is back');
  t.ok(Date.parse(String(fresh.body.Expiration)) - Date.now() <= 1800 * 1000 + 60_000, 'from the new definition (1800 s)');
});
