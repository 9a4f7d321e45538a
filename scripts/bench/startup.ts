/**
 * Start-up and memory under load.
 *  - From process start (just before spawn) to: the port accepting
 *    connections, the first credentials served on GET /v1/credentials (the
 *    request is sent as soon as the port is open and waits for the start-up
 *    fetch: file key, JWT, STS at the local emulator) and GET /health 200.
 *    Median of several starts. Baseline: the bare node:http server's time to
 *    its first 200, the floor set by node's own start.
 *  - RSS of the idle daemon after start, after a warm-up of a tenth of the
 *    requests, and after all of them (default 1,000,000) at 64 connections:
 *    growth between warm-up and the end is what a leak would look like; heap
 *    figures from /metrics are printed beside it.
 */
import { startBareServer } from './baselines.js';
import { runLoad, type LoadResult } from './load.js';
import { defaultSubject, mintIdentityToken } from '../../daemon/identity/jwt.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import {
  type BenchEnv,
  createBenchEnv,
  httpRequest,
  median,
  readRssBytes,
  scrapeMetrics,
  sleep,
  spawnDaemon,
  waitFor200,
  waitForPort,
} from './setup.js';

export interface StartRun {
  listenMs: number;
  firstCredentialsMs: number;
  healthMs: number;
}

export interface MemoryPoint {
  label: string;
  requestsSoFar: number;
  rssBytes: number | undefined;
  heapUsedBytes: number | undefined;
}

export interface StartupResults {
  runs: StartRun[];
  median: StartRun;
  bareNodeFirstResponseMs: number[];
  bareNodeMedianMs: number;
  /**
   * The "one upstream round trip": the call a start makes, AssumeRoleWithWebIdentity with a freshly
   * signed token, to the emulator's STS on a fresh connection (signing not timed); median of 5.
   */
  upstreamRoundTripMs: number;
  /** A bare GET of the same endpoint, which the emulator answers without verifying anything; median of 5. */
  bareGetRoundTripMs: number;
  /** The target for first credentials: bare node's first answer + 150 ms + one upstream round trip. */
  targetMs: number;
  memory: MemoryPoint[];
  load: LoadResult;
  requests: number;
  /** RSS after all requests / RSS after the warm-up. */
  rssGrowth: number | undefined;
  /** RSS after all requests / idle RSS after start. */
  rssVsIdle: number | undefined;
  flat: boolean | undefined;
}

export interface StartupOptions {
  runs: number;
  requests: number;
  log: (line: string) => void;
}

/** Above this, RSS after N requests counts as grown relative to the warmed-up daemon. */
export const RSS_FLAT_LIMIT = 1.15;
/** Issue 12: first credentials within node's own start + this + one upstream round trip. */
export const STARTUP_ALLOWANCE_MS = 150;

async function oneStart(configFile: string, url: string, port: number, readToken: () => string): Promise<StartRun> {
  const daemon = spawnDaemon(configFile);
  try {
    const t0 = daemon.spawnedAt;
    const listenAt = await waitForPort(port, daemon);
    // Every start writes a new token before it listens: it is read once the port is open.
    const token = readToken();
    // Both polls start once the port is open; the credentials request then waits on the start-up fetch.
    const [creds, health] = await Promise.all([
      waitFor200(`${url}/v1/credentials`, { headers: { authorization: token }, child: daemon, pollMs: 1 }),
      waitFor200(`${url}/health`, { child: daemon, pollMs: 2 }),
    ]);
    return { listenMs: listenAt - t0, firstCredentialsMs: creds.at - t0, healthMs: health.at - t0 };
  } finally {
    await daemon.stop();
  }
}

/**
 * What the emulator takes to answer the call a start makes: the JWT verified against the issuer's
 * JWKS, the role's trust checked, credentials made. Each call gets a fresh token (STS refuses none
 * reused here, but a real start signs a new one) and a fresh connection; after one warm-up call, as
 * every measured start follows the warm-up start.
 */
async function stsRoundTripMs(env: BenchEnv): Promise<number> {
  const signer = FileKeySigner.open(env.keyPath);
  const trips: number[] = [];
  for (let i = 0; i <= 5; i++) {
    const { token } = await mintIdentityToken(signer, {
      issuer: env.emulator.issuerBaseUrl,
      subject: defaultSubject(signer),
      audience: 'sts.amazonaws.com',
      lifetimeSeconds: 300,
    });
    const body = new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: env.roleArn('default'),
      RoleSessionName: `bench-${i}`,
      WebIdentityToken: token,
    }).toString();
    const t0 = performance.now();
    const r = await httpRequest(env.emulator.stsEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    if (r.status !== 200) throw new Error(`the emulator refused the round-trip probe: HTTP ${r.status}`);
    if (i > 0) trips.push(performance.now() - t0);
  }
  return median(trips);
}

async function memoryPoint(label: string, pid: number, url: string, requestsSoFar: number): Promise<MemoryPoint> {
  const rssBytes = readRssBytes(pid);
  const m = await scrapeMetrics(url);
  return { label, requestsSoFar, rssBytes, heapUsedBytes: m.get('credport_nodejs_heap_size_used_bytes') };
}

export async function runStartup(o: StartupOptions): Promise<StartupResults> {
  const env = await createBenchEnv();
  try {
    // A first start creates the token file (and warms the OS file cache, as any second start finds it).
    {
      const d = spawnDaemon(env.configFile);
      await waitFor200(`${env.url}/health`, { child: d, pollMs: 5 });
      await d.stop();
    }
    const runs: StartRun[] = [];
    const bare: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      runs.push(await oneStart(env.configFile, env.url, env.port, () => env.token()));
      // Interleaved with credport's starts, so both see the same machine.
      bare.push(await bareFirstResponse(env.dir));
    }
    const med: StartRun = {
      listenMs: median(runs.map((r) => r.listenMs)),
      firstCredentialsMs: median(runs.map((r) => r.firstCredentialsMs)),
      healthMs: median(runs.map((r) => r.healthMs)),
    };
    const gets: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await httpRequest(env.emulator.stsEndpoint);
      gets.push(performance.now() - t0);
    }
    const bareGetRoundTripMs = median(gets);
    const upstreamRoundTripMs = await stsRoundTripMs(env);
    const targetMs = median(bare) + STARTUP_ALLOWANCE_MS + upstreamRoundTripMs;
    o.log(
      `  start: listening ${med.listenMs.toFixed(0)} ms, first credentials ${med.firstCredentialsMs.toFixed(0)} ms, /health 200 ${med.healthMs.toFixed(0)} ms (bare node first 200: ${median(bare).toFixed(0)} ms)`,
    );

    // Memory under a long run.
    const daemon = spawnDaemon(env.configFile);
    try {
      await waitFor200(`${env.url}/health`, { child: daemon, pollMs: 5 });
      await sleep(1000);
      const memory: MemoryPoint[] = [await memoryPoint('idle after start', daemon.pid, env.url, 0)];
      const warm = Math.max(1000, Math.round(o.requests / 10));
      const headers = { authorization: env.token() };
      await runLoad({ url: `${env.url}/v1/credentials`, connections: 64, amount: warm, headers });
      await sleep(1000);
      memory.push(await memoryPoint(`after ${warm.toLocaleString('en-US')} requests (warm-up)`, daemon.pid, env.url, warm));
      o.log(`  ${o.requests.toLocaleString('en-US')} requests at 64 connections...`);
      const load = await runLoad({ url: `${env.url}/v1/credentials`, connections: 64, amount: o.requests, headers, serverPid: daemon.pid });
      await sleep(1000);
      memory.push(
        await memoryPoint(`after ${(warm + o.requests).toLocaleString('en-US')} requests`, daemon.pid, env.url, warm + load.requests),
      );
      const [idle, warmed, end] = [memory[0]!.rssBytes, memory[1]!.rssBytes, memory[2]!.rssBytes];
      const rssGrowth = warmed !== undefined && end !== undefined ? end / warmed : undefined;
      const rssVsIdle = idle !== undefined && end !== undefined ? end / idle : undefined;
      return {
        runs,
        median: med,
        bareNodeFirstResponseMs: bare,
        bareNodeMedianMs: median(bare),
        upstreamRoundTripMs,
        bareGetRoundTripMs,
        targetMs,
        memory,
        load,
        requests: o.requests,
        rssGrowth,
        rssVsIdle,
        flat: rssGrowth === undefined ? undefined : rssGrowth <= RSS_FLAT_LIMIT,
      };
    } finally {
      await daemon.stop();
    }
  } finally {
    await env.close();
  }
}

/** Spawn of the bare node:http server to its first 200. */
async function bareFirstResponse(dir: string): Promise<number> {
  const b = await startBareServer(dir, [
    { path: '/', status: 200, headers: [['content-type', 'application/json; charset=utf-8']], body: Buffer.from('{}') },
  ]);
  try {
    const r = await waitFor200(b.url, { child: b.child, pollMs: 1 });
    return r.at - b.child.spawnedAt;
  } finally {
    await b.stop();
  }
}
