/**
 * The load generator: autocannon's programmatic API, typed here for the parts
 * we use (the package ships no types). Latency is recorded from autocannon's
 * per-response event into a microsecond histogram of our own, because
 * autocannon's own histogram keeps whole milliseconds, too coarse for a
 * 2 ms p99 target on loopback. The server's CPU time over the run is read
 * from /proc, so each result also says how much CPU a request cost the
 * server: a figure that does not depend on how fast the load generator is.
 */
import { createRequire } from 'node:module';
import { createHistogram } from 'node:perf_hooks';
import { readCpuSeconds } from './setup.js';

export interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** Called with every response to this request (the body as text). */
  onResponse?: (status: number, body: string) => void;
}

interface AutocannonOptions {
  url: string;
  connections: number;
  duration?: number;
  amount?: number;
  method?: string;
  headers?: Record<string, string>;
  requests?: AutocannonRequest[];
  timeout?: number;
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  requests: { total: number; sent: number };
  statusCodeStats: Record<string, { count: number }>;
}

interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void): this;
}

type Autocannon = (o: AutocannonOptions) => AutocannonInstance;

// autocannon is CommonJS with a function as its export.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadOptions {
  url: string;
  connections: number;
  /** Whole seconds (autocannon stops on its 1-second sampling tick). */
  durationS?: number;
  /** Stop after this many responses instead of after a duration. */
  amount?: number;
  method?: string;
  headers?: Record<string, string>;
  requests?: AutocannonRequest[];
  /** The server's pid, to read its CPU time before and after. */
  serverPid?: number;
}

export interface LoadResult {
  connections: number;
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Server CPU seconds used during the run (undefined without a pid). */
  serverCpuS?: number;
  /** Wall-clock seconds of the whole run, as this process saw them. */
  wallS: number;
  /** Server CPU seconds used during the run, per 1,000 requests, in ms (undefined without a pid). */
  serverCpuMsPer1k?: number;
  /** Server CPU use during the run, as a fraction of one core. */
  serverCpuCores?: number;
  statusCodes: Record<string, number>;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  // Microseconds, 1 µs to 60 s; createHistogram keeps 3 significant digits.
  const hist = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
  const cpuBefore = o.serverPid !== undefined ? readCpuSeconds(o.serverPid) : undefined;
  const t0 = performance.now();
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    ...(o.amount !== undefined ? { amount: o.amount } : { duration: o.durationS ?? 5 }),
    ...(o.method ? { method: o.method } : {}),
    ...(o.headers ? { headers: o.headers } : {}),
    ...(o.requests ? { requests: o.requests } : {}),
    timeout: 10,
  });
  instance.on('response', (_client, _status, _bytes, ms) => {
    hist.record(Math.max(1, Math.round(ms * 1000)));
  });
  const r = await instance;
  const wall = (performance.now() - t0) / 1000;
  const cpuAfter = o.serverPid !== undefined ? readCpuSeconds(o.serverPid) : undefined;
  const seconds = r.duration > 0 ? r.duration : wall;
  const requests = r.requests.total;
  const cpu = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats)) statusCodes[code] = s.count;
  return {
    connections: o.connections,
    requests,
    seconds,
    rps: requests / seconds,
    p50Ms: hist.count > 0 ? hist.percentile(50) / 1000 : Number.NaN,
    p99Ms: hist.count > 0 ? hist.percentile(99) / 1000 : Number.NaN,
    maxMs: hist.count > 0 ? hist.max / 1000 : Number.NaN,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    wallS: wall,
    ...(cpu !== undefined && requests > 0
      ? { serverCpuS: cpu, serverCpuMsPer1k: (cpu * 1000 * 1000) / requests, serverCpuCores: cpu / wall }
      : {}),
    statusCodes,
  };
}

const middle = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Several runs of the same target as one figure: the median round for rate
 * and latency (one round disturbed by something else on the machine does not
 * move it), sums for counts and for CPU per request.
 */
export function combineRounds(rounds: LoadResult[]): LoadResult {
  if (rounds.length === 0) throw new Error('no rounds to combine');
  const sum = (f: (r: LoadResult) => number): number => rounds.reduce((a, r) => a + f(r), 0);
  const requests = sum((r) => r.requests);
  const wallS = sum((r) => r.wallS);
  const cpuKnown = rounds.every((r) => r.serverCpuS !== undefined);
  const cpu = sum((r) => r.serverCpuS ?? 0);
  const statusCodes: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.statusCodes)) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  return {
    connections: rounds[0]!.connections,
    requests,
    seconds: sum((r) => r.seconds),
    rps: middle(rounds.map((r) => r.rps)),
    p50Ms: middle(rounds.map((r) => r.p50Ms)),
    p99Ms: middle(rounds.map((r) => r.p99Ms)),
    maxMs: Math.max(...rounds.map((r) => r.maxMs)),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    wallS,
    ...(cpuKnown && requests > 0 ? { serverCpuS: cpu, serverCpuMsPer1k: (cpu * 1e6) / requests, serverCpuCores: cpu / wallS } : {}),
    statusCodes,
  };
}
