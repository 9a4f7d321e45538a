/**
 * Cost per profile: the daemon with 1, 100 and 1,000 aws-oidc profiles
 * against the emulator. The emulator issues credentials that live a few
 * seconds, and the refresh config (fraction 0.5, no jitter) makes every
 * profile refresh at half that lifetime, so one full refresh round happens
 * on a known schedule while we watch:
 *  - RSS once every profile holds credentials (GET /health 200);
 *  - the daemon's CPU time for the refresh round, from its own /metrics
 *    (prom-client's process.cpuUsage, prefix credport_), read just before
 *    the round and once the emulator has answered every refresh. Reading
 *    /metrics costs CPU itself (more with more profiles), so a back-to-back
 *    pair of reads measures that cost and it is subtracted.
 * Growth is "at most linear" when the per-profile cost at the largest count
 * is no more than LINEAR_SLACK times the per-profile cost at the next one.
 */
import { createBenchEnv, metricsCpuSeconds, readRssBytes, scrapeMetrics, sleep, spawnDaemon, waitFor200 } from './setup.js';

export interface ScalePoint {
  profiles: number;
  /** Spawn to GET /health 200 (every profile fetched once). */
  allFetchedMs: number;
  /** Credential lifetime the emulator granted in this measurement (s). */
  lifetimeS: number;
  /** CPU the idle daemon used, ms per second (subtracted from the round's figure). */
  idleCpuMsPerS: number;
  rssBytes: number | undefined;
  /** CPU seconds of the daemon for one refresh round (all profiles once), /metrics cost removed. */
  refreshCpuS: number;
  /** First to last upstream answer of the refresh round, as the emulator saw them. */
  refreshRoundMs: number;
  cpuPerProfileMs: number;
  /** (RSS - RSS with one profile) / (profiles - 1). */
  rssPerProfileBytes: number | undefined;
}

export interface ScaleResults {
  /** Base credential lifetime (s); each count adds 20 ms per profile. */
  lifetimeS: number;
  points: ScalePoint[];
  cpuLinear: boolean | undefined;
  rssLinear: boolean | undefined;
}

export interface ScaleOptions {
  counts: number[];
  /** Credential lifetime the emulator grants (s); the round comes at half of it. */
  lifetimeS: number;
  log: (line: string) => void;
}

export const LINEAR_SLACK = 1.5;
const IDLE_SAMPLE_MS = 1000;

/**
 * The round must come after every profile's first fetch and the idle sample: fetching takes longer with
 * more profiles, so the lifetime grows with the count (20 ms of lifetime per profile on top of the base).
 */
const lifetimeFor = (base: number, n: number): number => Math.ceil(base + 0.02 * n);

/** The round started before the baseline could be read: the lifetime was too short for this many profiles. */
class LifetimeTooShort extends Error {}

function profileNames(n: number): string[] {
  // The first is `default` so that the config has a default profile whatever the count.
  return ['default', ...Array.from({ length: n - 1 }, (_, i) => `p${String(i + 2).padStart(4, '0')}`)];
}

async function measure(n: number, lifetimeS: number): Promise<Omit<ScalePoint, 'rssPerProfileBytes'>> {
  const env = await createBenchEnv({
    profiles: profileNames(n),
    refresh: { fraction: 0.5, jitter: 0, expiry_margin_seconds: 2, min_remaining_seconds: 4 },
    beforeStart: (e) => e.setCredentialLifetime(lifetimeS),
  });
  const daemon = spawnDaemon(env.configFile);
  try {
    const health = await waitFor200(`${env.url}/health`, { child: daemon, pollMs: 50, timeoutMs: 120_000 });
    const allFetchedMs = health.at - daemon.spawnedAt;
    const before = env.emulator.stats;
    if (before.stsSuccesses !== n || before.stsCalls !== n) {
      if (before.stsCalls > n) throw new LifetimeTooShort(`the refresh round began before all ${n} profiles were fetched`);
      throw new Error(
        `expected ${n} successful upstream calls by the time every profile was fetched, saw ${before.stsSuccesses} of ${before.stsCalls}`,
      );
    }
    await sleep(200);
    const rssBytes = readRssBytes(daemon.pid);
    // What a read of /metrics costs (two reads back to back), and what the idle daemon spends per
    // second (its timers, prom-client's event-loop monitor): both come off the round's figure.
    // The smaller of two back-to-back pairs: a pair that caught a GC or a timer would overstate it.
    const mA = metricsCpuSeconds(await scrapeMetrics(env.url));
    const mA2 = metricsCpuSeconds(await scrapeMetrics(env.url));
    const mB = metricsCpuSeconds(await scrapeMetrics(env.url));
    const scrapeCost = Math.max(0, Math.min(mA2 - mA, mB - mA2));
    const tB = performance.now();
    await sleep(IDLE_SAMPLE_MS);
    const m1 = metricsCpuSeconds(await scrapeMetrics(env.url));
    const t1 = performance.now();
    const idlePerS = Math.max(0, m1 - mB - scrapeCost) / ((t1 - tB) / 1000);
    if (env.emulator.stats.stsCalls !== n) throw new LifetimeTooShort('the refresh round began before its CPU baseline was read');
    let firstAt: number | undefined;
    const deadline = performance.now() + lifetimeS * 1000 + 60_000;
    for (;;) {
      const s = env.emulator.stats;
      if (firstAt === undefined && s.stsCalls > n) firstAt = performance.now();
      if (s.stsSuccesses >= 2 * n) break;
      if (s.stsFailures > 0) throw new Error(`${s.stsFailures} refreshes failed at the emulator`);
      if (performance.now() > deadline) throw new Error(`only ${s.stsSuccesses - n} of ${n} profiles refreshed in time`);
      await sleep(10);
    }
    const lastAt = performance.now();
    // Let the daemon finish handling the last answers (parse, store, schedule) before reading its CPU.
    await sleep(300);
    const m2 = metricsCpuSeconds(await scrapeMetrics(env.url));
    const t2 = performance.now();
    const refreshCpuS = Math.max(0, m2 - m1 - scrapeCost - idlePerS * ((t2 - t1) / 1000));
    return {
      profiles: n,
      allFetchedMs,
      lifetimeS,
      rssBytes,
      idleCpuMsPerS: idlePerS * 1000,
      refreshCpuS,
      refreshRoundMs: lastAt - (firstAt ?? lastAt),
      cpuPerProfileMs: (refreshCpuS * 1000) / n,
    };
  } finally {
    await daemon.stop();
    await env.close();
  }
}

export async function runProfilesScale(o: ScaleOptions): Promise<ScaleResults> {
  const points: ScalePoint[] = [];
  for (const n of o.counts) {
    let p: Awaited<ReturnType<typeof measure>>;
    const lifetimeS = lifetimeFor(o.lifetimeS, n);
    try {
      p = await measure(n, lifetimeS);
    } catch (err) {
      if (!(err instanceof LifetimeTooShort)) throw err;
      // A slower (or busier) machine needs longer to fetch this many profiles: give the round more room, once.
      o.log(`  ${(err as Error).message}; again with ${lifetimeS * 2}s credentials`);
      p = await measure(n, lifetimeS * 2);
    }
    const one = points.find((x) => x.profiles === 1)?.rssBytes;
    const rssPerProfileBytes = n > 1 && one !== undefined && p.rssBytes !== undefined ? (p.rssBytes - one) / (n - 1) : undefined;
    points.push({ ...p, rssPerProfileBytes });
    o.log(
      `  ${String(n).padStart(4)} profiles: all fetched in ${p.allFetchedMs.toFixed(0)} ms, RSS ${((p.rssBytes ?? 0) / 2 ** 20).toFixed(1)} MiB, ` +
        `refresh round ${(p.refreshCpuS * 1000).toFixed(0)} ms CPU (${p.cpuPerProfileMs.toFixed(2)} ms/profile) over ${p.refreshRoundMs.toFixed(0)} ms`,
    );
  }
  const multi = points.filter((p) => p.profiles > 1).sort((a, b) => a.profiles - b.profiles);
  let cpuLinear: boolean | undefined;
  let rssLinear: boolean | undefined;
  if (multi.length >= 2) {
    const [small, large] = [multi[multi.length - 2]!, multi[multi.length - 1]!];
    cpuLinear = large.cpuPerProfileMs <= small.cpuPerProfileMs * LINEAR_SLACK;
    if (small.rssPerProfileBytes !== undefined && large.rssPerProfileBytes !== undefined) {
      rssLinear = large.rssPerProfileBytes <= Math.max(small.rssPerProfileBytes, 0) * LINEAR_SLACK;
    }
  }
  return { lifetimeS: o.lifetimeS, points, cpuLinear, rssLinear };
}
