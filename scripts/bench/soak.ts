/**
 * `npm run soak`: a bounded long run (default 60 s) of mixed traffic at
 * saturation (ECS credentials, IMDS credentials and /health, three autocannon
 * instances at once) against a daemon whose emulator issues short-lived
 * credentials, so that the daemon refreshes several times under load. Every
 * credentials response is checked on receipt: its Expiration must lie in the
 * future. Fails (exit 1) on any non-2xx answer or connection error, any
 * expired credentials, no refresh during the run, or RSS that grows.
 * Not run by CI; credentials are never printed.
 *
 *   npm run soak                      60 s
 *   npm run soak -- --seconds 600     or CREDPORT_SOAK_SECONDS=600
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, type LoadResult } from './load.js';
import { createBenchEnv, httpRequest, median, OUT_ROOT, readRssBytes, spawnDaemon, waitFor200 } from './setup.js';

/** End-of-run RSS above this multiple of the early (warmed-up) RSS counts as growth. */
const RSS_FLAT_LIMIT = 1.25;

interface CredentialCheck {
  checked: number;
  expired: number;
  unreadable: number;
  /** The least time left seen on receipt, in ms. */
  minRemainingMs: number;
  distinctExpirations: Set<string>;
}

function checker(): { check: CredentialCheck; onResponse: (status: number, body: string) => void } {
  const check: CredentialCheck = {
    checked: 0,
    expired: 0,
    unreadable: 0,
    minRemainingMs: Number.POSITIVE_INFINITY,
    distinctExpirations: new Set(),
  };
  return {
    check,
    onResponse(status, body) {
      if (status !== 200) return; // counted as non-2xx by autocannon
      const now = Date.now();
      // Only the Expiration field is read; the rest of the body (the secrets) is not looked at.
      const m = /"Expiration"\s*:\s*"([^"]+)"/.exec(body);
      const at = m?.[1] !== undefined ? Date.parse(m[1]) : Number.NaN;
      check.checked++;
      if (!Number.isFinite(at)) {
        check.unreadable++;
        return;
      }
      check.distinctExpirations.add(m![1]!);
      const remaining = at - now;
      if (remaining <= 0) check.expired++;
      if (remaining < check.minRemainingMs) check.minRemainingMs = remaining;
    },
  };
}

function positiveInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive whole number, not ${v}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { seconds: { type: 'string' }, lifetime: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'Usage: npm run soak [-- --seconds N (default 60, or CREDPORT_SOAK_SECONDS)] [--lifetime S (credential lifetime; default a third of the run, 8 to 20 s)]\n',
    );
    return 0;
  }
  const seconds = positiveInt(values.seconds, '--seconds') ?? positiveInt(process.env.CREDPORT_SOAK_SECONDS, 'CREDPORT_SOAK_SECONDS') ?? 60;
  // Short enough that a refresh (at 40-50% of the lifetime) comes around at least twice in the run.
  const lifetimeS = positiveInt(values.lifetime, '--lifetime') ?? Math.max(8, Math.min(20, Math.floor(seconds / 3)));

  const env = await createBenchEnv({
    // Suited to credentials that live seconds: never served with less than 2 s left; a request waits
    // for a refresh below 4 s left (the scheduled refresh comes long before).
    refresh: { expiry_margin_seconds: 2, min_remaining_seconds: 4 },
    beforeStart: (e) => e.setCredentialLifetime(lifetimeS),
  });
  const daemon = spawnDaemon(env.configFile);
  const rss: { t: number; bytes: number }[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    await waitFor200(`${env.url}/health`, { child: daemon, pollMs: 20 });
    const put = await httpRequest(`${env.url}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' },
    });
    if (put.status !== 200) throw new Error(`IMDS token request answered ${put.status}`);
    const imdsHeaders = { 'x-aws-ec2-metadata-token': put.body.toString('utf8') };
    const role = await httpRequest(`${env.url}/latest/meta-data/iam/security-credentials/`, { headers: imdsHeaders });
    if (role.status !== 200) throw new Error(`IMDS role listing answered ${role.status}`);
    const stsBefore = env.emulator.stats.stsSuccesses;

    process.stderr.write(`soak: ${seconds} s of ECS + IMDS + /health at saturation; credentials live ${lifetimeS} s...\n`);
    const t0 = performance.now();
    sampler = setInterval(() => {
      const b = readRssBytes(daemon.pid);
      if (b !== undefined) rss.push({ t: (performance.now() - t0) / 1000, bytes: b });
    }, 1000);
    const ecs = checker();
    const imds = checker();
    const [ecsLoad, imdsLoad, healthLoad] = await Promise.all([
      runLoad({
        url: env.url,
        connections: 32,
        durationS: seconds,
        requests: [{ method: 'GET', path: '/v1/credentials', headers: { authorization: env.token() }, onResponse: ecs.onResponse }],
      }),
      runLoad({
        url: env.url,
        connections: 16,
        durationS: seconds,
        requests: [
          {
            method: 'GET',
            path: `/latest/meta-data/iam/security-credentials/${role.body.toString('utf8')}`,
            headers: imdsHeaders,
            onResponse: imds.onResponse,
          },
        ],
      }),
      runLoad({ url: `${env.url}/health`, connections: 4, durationS: seconds }),
    ]);
    clearInterval(sampler);
    sampler = undefined;
    const refreshes = env.emulator.stats.stsSuccesses - stsBefore;
    const stsFailures = env.emulator.stats.stsFailures;

    // RSS early (after the first 5 s) versus the last 10 s: the medians, so one GC-timed sample moves neither.
    const early = rss.filter((s) => s.t >= 5 && s.t < 15).map((s) => s.bytes);
    const late = rss.filter((s) => s.t >= Math.max(15, seconds - 10)).map((s) => s.bytes);
    const rssEarly = early.length ? median(early) : undefined;
    const rssLate = late.length ? median(late) : undefined;
    const rssRatio = rssEarly !== undefined && rssLate !== undefined ? rssLate / rssEarly : undefined;

    const failures: string[] = [];
    for (const [name, r] of [
      ['ECS', ecsLoad],
      ['IMDS', imdsLoad],
      ['health', healthLoad],
    ] as const) {
      if (r.non2xx > 0) failures.push(`${name}: ${r.non2xx} non-2xx answers (${JSON.stringify(r.statusCodes)})`);
      if (r.errors > 0 || r.timeouts > 0) failures.push(`${name}: ${r.errors} connection errors, ${r.timeouts} timeouts`);
    }
    for (const [name, c] of [
      ['ECS', ecs.check],
      ['IMDS', imds.check],
    ] as const) {
      if (c.expired > 0) failures.push(`${name}: ${c.expired} responses carried expired credentials`);
      if (c.unreadable > 0) failures.push(`${name}: ${c.unreadable} responses without a readable Expiration`);
      if (c.checked === 0) failures.push(`${name}: no credentials response was checked`);
    }
    if (refreshes < 1) failures.push(`no credential refresh happened during the run (run longer than ${Math.ceil(lifetimeS / 2)} s)`);
    if (stsFailures > 0) failures.push(`${stsFailures} refreshes failed at the emulator`);
    if (rssRatio !== undefined && rssRatio > RSS_FLAT_LIMIT) failures.push(`RSS grew ${rssRatio.toFixed(2)}× (limit ${RSS_FLAT_LIMIT}×)`);

    const mib = (b: number | undefined) => (b === undefined ? 'n/a' : `${(b / 2 ** 20).toFixed(1)} MiB`);
    const line = (name: string, r: LoadResult, c?: CredentialCheck) =>
      `  ${name.padEnd(7)} ${r.requests.toLocaleString('en-US').padStart(10)} requests  ${Math.round(r.rps).toString().padStart(6)} req/s  p99 ${r.p99Ms.toFixed(2)} ms  ` +
      `non-2xx ${r.non2xx}  errors ${r.errors + r.timeouts}` +
      (c
        ? `  checked ${c.checked.toLocaleString('en-US')}, expired ${c.expired}, least time left ${(c.minRemainingMs / 1000).toFixed(1)} s, ${c.distinctExpirations.size} distinct expirations`
        : '');
    const report = [
      `credport soak: ${seconds} s, credentials living ${lifetimeS} s, ${refreshes} refreshes during the run`,
      line('ECS', ecsLoad, ecs.check),
      line('IMDS', imdsLoad, imds.check),
      line('health', healthLoad),
      `  RSS: ${mib(rssEarly)} early (5-15 s) -> ${mib(rssLate)} at the end (${rssRatio?.toFixed(2) ?? 'n/a'}×), max ${mib(Math.max(...rss.map((s) => s.bytes)))}`,
      failures.length
        ? `FAIL:\n${failures.map((f) => `  - ${f}`).join('\n')}`
        : 'PASS: no errors, no expired credentials, refreshes under load, RSS flat',
    ].join('\n');
    process.stdout.write(`${report}\n`);
    const jsonFile = join(OUT_ROOT, 'soak-results.json');
    writeFileSync(
      jsonFile,
      `${JSON.stringify(
        {
          seconds,
          lifetimeS,
          refreshes,
          loads: { ecs: ecsLoad, imds: imdsLoad, health: healthLoad },
          checks: {
            ecs: { ...ecs.check, distinctExpirations: ecs.check.distinctExpirations.size },
            imds: { ...imds.check, distinctExpirations: imds.check.distinctExpirations.size },
          },
          rss,
          rssRatio,
          failures,
        },
        null,
        2,
      )}\n`,
    );
    process.stderr.write(`results (JSON): ${jsonFile}\n`);
    return failures.length ? 1 : 0;
  } finally {
    if (sampler) clearInterval(sampler);
    await daemon.stop();
    await env.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).message ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
