/**
 * Serving: requests/s and p50/p99 latency of GET /v1/credentials (bearer
 * token) and of the IMDS credentials path (pre-issued session token) at 1, 16
 * and 64 connections, against credport and two baselines that answer with the
 * same bytes: bare node:http and nginx. All three run as separate processes
 * at once and are measured in turn, cell by cell, with the order rotated per
 * cell, so that slow drift of the machine does not favour one of them. Every
 * target gets the same request headers (the baselines ignore them).
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ensureNginx, replayableHeaders, startBareServer, startNginx, type CapturedResponse, type RunningBaseline } from './baselines.js';
import { combineRounds, runLoad, type LoadResult } from './load.js';
import { createBenchEnv, httpRequest, spawnDaemon, waitFor200, writePrivate } from './setup.js';

export type Endpoint = 'ecs' | 'imds';
export const ENDPOINT_LABEL: Record<Endpoint, string> = {
  ecs: 'GET /v1/credentials',
  imds: 'GET /latest/meta-data/iam/security-credentials/<role>',
};

export interface ServingCell {
  endpoint: Endpoint;
  connections: number;
  target: string;
  /** The rounds combined (median rate and latency, summed CPU and counts). */
  result: LoadResult;
  rounds: LoadResult[];
}

export interface WrkResult {
  target: string;
  endpoint: Endpoint;
  connections: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ServingResults {
  connections: number[];
  durationS: number;
  rounds: number;
  warmupS: number;
  targets: string[];
  /** 1-minute load average before and after: other work on the machine shows here. */
  loadAverage: { before: number; after: number };
  cells: ServingCell[];
  /** Why a baseline is missing, by name. */
  skipped: Record<string, string>;
  notes: string[];
  wrk: WrkResult[] | { skipped: string };
  /** The response sizes replayed by the baselines (bytes of body). */
  bodyBytes: Record<Endpoint, number>;
}

export interface ServingOptions {
  connections: number[];
  /** Seconds per round per target. */
  durationS: number;
  rounds: number;
  warmupS: number;
  log: (line: string) => void;
}

interface Target {
  name: string;
  url: string;
  pid: number;
}

/** wrk, only if installed: a second, C load generator as a cross-check of autocannon's figures. */
function runWrk(
  binary: string,
  dir: string,
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): { rps: number; p50Ms: number; p99Ms: number } | undefined {
  // Headers go through a Lua script, not argv, so the token is not visible in the process list.
  const script = join(dir, 'wrk-headers.lua');
  writePrivate(
    script,
    Object.entries(headers)
      .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
      .join('\n') + '\n',
  );
  const r = spawnSync(binary, ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], {
    encoding: 'utf8',
    timeout: (seconds + 30) * 1000,
  });
  if (r.status !== 0) return undefined;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1];
  const toMs = (v: string | undefined, unit: string | undefined): number => {
    const n = Number(v);
    return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
  };
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s)/m.exec(r.stdout);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)/m.exec(r.stdout);
  if (!rps || !p50 || !p99) return undefined;
  return { rps: Number(rps), p50Ms: toMs(p50[1], p50[2]), p99Ms: toMs(p99[1], p99[2]) };
}

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

export async function runServing(o: ServingOptions): Promise<ServingResults> {
  const loadBefore = loadavg()[0] ?? 0;
  const env = await createBenchEnv();
  const daemon = spawnDaemon(env.configFile);
  const baselines: RunningBaseline[] = [];
  const skipped: Record<string, string> = {};
  const notes: string[] = [];
  try {
    await waitFor200(`${env.url}/health`, { child: daemon, pollMs: 20 });
    const ecsHeaders = { authorization: env.token() };
    const put = await httpRequest(`${env.url}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' },
    });
    if (put.status !== 200) throw new Error(`IMDS token request answered ${put.status}`);
    const imdsHeaders = { 'x-aws-ec2-metadata-token': put.body.toString('utf8') };
    const role = await httpRequest(`${env.url}/latest/meta-data/iam/security-credentials/`, { headers: imdsHeaders });
    if (role.status !== 200) throw new Error(`IMDS role listing answered ${role.status}`);
    const paths: Record<Endpoint, string> = {
      ecs: '/v1/credentials',
      imds: `/latest/meta-data/iam/security-credentials/${role.body.toString('utf8')}`,
    };
    const headers: Record<Endpoint, Record<string, string>> = { ecs: ecsHeaders, imds: imdsHeaders };

    // What credport answers, byte for byte, is what the baselines will answer.
    const captured: CapturedResponse[] = [];
    for (const ep of ['ecs', 'imds'] as const) {
      const r = await httpRequest(`${env.url}${paths[ep]}`, { headers: headers[ep] });
      if (r.status !== 200) throw new Error(`${ENDPOINT_LABEL[ep]} answered ${r.status}`);
      captured.push({ path: paths[ep], status: r.status, headers: replayableHeaders(r.rawHeaders), body: r.body });
    }
    const bodyBytes = { ecs: captured[0]!.body.length, imds: captured[1]!.body.length };

    baselines.push(await startBareServer(env.dir, captured));
    const nginx = ensureNginx(o.log);
    if ('skipped' in nginx) {
      skipped.nginx = nginx.skipped;
      o.log(`nginx baseline skipped: ${nginx.skipped}`);
    } else {
      if (nginx.note) notes.push(`nginx: ${nginx.note}`);
      try {
        baselines.push(await startNginx(nginx.path, env.dir, captured));
      } catch (err) {
        skipped.nginx = `nginx did not start: ${(err as Error).message.split('\n')[0]}`;
        o.log(`nginx baseline skipped: ${skipped.nginx}`);
      }
    }
    const targets: Target[] = [
      { name: 'credport', url: env.url, pid: daemon.pid },
      ...baselines.map((b) => ({ name: b.name, url: b.url, pid: b.child.pid })),
    ];

    const cells: ServingCell[] = [];
    let rotation = 0;
    for (const connections of o.connections) {
      for (const ep of ['ecs', 'imds'] as const) {
        const load = (t: Target, durationS: number, pid?: number) =>
          runLoad({
            url: `${t.url}${paths[ep]}`,
            connections,
            headers: headers[ep],
            durationS,
            ...(pid !== undefined ? { serverPid: pid } : {}),
          });
        for (const t of targets) await load(t, o.warmupS);
        const rounds = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]));
        for (let round = 0; round < o.rounds; round++) {
          // Rotate who goes first, so that no target always runs right after the same neighbour.
          const order = targets.map((_, i) => targets[(i + rotation) % targets.length]!);
          rotation++;
          for (const t of order) rounds.get(t.name)!.push(await load(t, o.durationS, t.pid));
        }
        for (const t of targets) {
          const list = rounds.get(t.name)!;
          const result = combineRounds(list);
          cells.push({ endpoint: ep, connections, target: t.name, result, rounds: list });
          o.log(
            `  ${ep.padEnd(4)} c=${String(connections).padStart(2)} ${t.name.padEnd(9)} ${Math.round(result.rps).toString().padStart(6)} req/s  p50 ${result.p50Ms.toFixed(3)} ms  p99 ${result.p99Ms.toFixed(3)} ms  ` +
              `${result.serverCpuMsPer1k?.toFixed(1) ?? '?'} µs CPU/req` +
              (result.non2xx + result.errors > 0 ? `  (${result.non2xx} non-2xx, ${result.errors} errors)` : ''),
          );
        }
      }
    }

    let wrk: ServingResults['wrk'];
    const wrkBin = which('wrk');
    if (!wrkBin) wrk = { skipped: 'wrk is not installed (optional cross-check; apt-get install wrk)' };
    else {
      const list: WrkResult[] = [];
      const top = Math.max(...o.connections);
      for (const t of targets) {
        for (const ep of ['ecs', 'imds'] as const) {
          const r = runWrk(wrkBin, env.dir, `${t.url}${paths[ep]}`, headers[ep], top, Math.max(2, Math.min(o.durationS, 5)));
          if (r) list.push({ target: t.name, endpoint: ep, connections: top, ...r });
        }
      }
      wrk = list.length > 0 ? list : { skipped: 'wrk ran but its output could not be read' };
    }

    return {
      connections: o.connections,
      durationS: o.durationS,
      rounds: o.rounds,
      warmupS: o.warmupS,
      loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
      targets: targets.map((t) => t.name),
      cells,
      skipped,
      notes,
      wrk,
      bodyBytes,
    };
  } finally {
    for (const b of baselines) await b.stop();
    await daemon.stop();
    await env.close();
  }
}
