/**
 * Where a served request's CPU goes: the daemon runs under `node --cpu-prof` while autocannon loads one
 * credentials endpoint, and the profile's self time is summed by function and by module. Not part of
 * `npm run bench` (a profiler changes what it measures); a tool for finding the next microsecond.
 *
 * Usage: node dist/scripts/bench/profile-serving.js [ecs|imds] [connections] [seconds] [rounds]
 *   rounds > 1 opens fresh connections each round, as the serving benchmark does.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replayableHeaders } from './baselines.js';
import type { BareServerSpec } from './bare-server.js';
import { runLoad } from './load.js';
import {
  type Child,
  createBenchEnv,
  freePort,
  httpRequest,
  OUT_ROOT,
  spawnChild,
  spawnDaemon,
  waitFor200,
  waitForPort,
  writePrivate,
} from './setup.js';

const BARE_SERVER = fileURLToPath(new URL('./bare-server.js', import.meta.url));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A load window in CLOCK_MONOTONIC microseconds, which is the clock of V8's profile timestamps on Linux. */
interface Window {
  from: number;
  to: number;
}
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

function moduleOf(url: string): string {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return url;
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1)
    return `npm:${path
      .slice(nm + 14)
      .split('/')
      .slice(0, path[nm + 14] === '@' ? 2 : 1)
      .join('/')}`;
  return relative(OUT_ROOT, path);
}

/** Self time inside the load windows only (start-up and idle gaps left out), per request served in them. */
export function summarise(profile: CpuProfile, windows: Window[], requests: number, top: number): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (!windows.some((w) => t >= w.from && t <= w.to)) continue;
    const id = profile.samples[i]!;
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    const fn = `${f.functionName || '(anonymous)'} ${moduleOf(f.url)}:${f.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    const m = moduleOf(f.url);
    byModule.set(m, (byModule.get(m) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}% ${(us / requests).toFixed(2).padStart(6)} µs/req`;
  const lines = [
    `busy in load windows: ${(total / 1000).toFixed(0)} ms, ${requests} requests, ${(total / requests).toFixed(1)} µs/req`,
    '',
    'self time by module:',
  ];
  for (const [m, us] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${m}`);
  lines.push('', 'self time by function:');
  for (const [f, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${f}`);
  return lines;
}

export function readProfile(dir: string): CpuProfile {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile written in ${dir}`);
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
}

async function main(): Promise<void> {
  const endpoint = process.argv[2] === 'imds' ? 'imds' : 'ecs';
  const connections = Number(process.argv[3] ?? 64);
  const seconds = Number(process.argv[4] ?? 10);
  const rounds = Number(process.argv[5] ?? 1);
  const env = await createBenchEnv();
  const profDir = join(env.dir, 'prof');
  const bareDir = join(env.dir, 'prof-bare');
  const daemon = spawnDaemon(env.configFile, ['--cpu-prof', '--cpu-prof-dir', profDir]);
  let bare: Child | undefined;
  try {
    await waitFor200(`${env.url}/health`, { child: daemon, pollMs: 20 });
    let path = '/v1/credentials';
    let headers: Record<string, string> = { authorization: env.token() };
    if (endpoint === 'imds') {
      const put = await httpRequest(`${env.url}/latest/api/token`, {
        method: 'PUT',
        headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '600' },
      });
      headers = { 'x-aws-ec2-metadata-token': put.body.toString('utf8') };
      const role = await httpRequest(`${env.url}/latest/meta-data/iam/security-credentials/`, { headers });
      path = `/latest/meta-data/iam/security-credentials/${role.body.toString('utf8')}`;
    }
    const r = await httpRequest(`${env.url}${path}`, { headers });
    const port = await freePort();
    const spec: BareServerSpec = {
      port,
      routes: [{ path, status: r.status, headers: replayableHeaders(r.rawHeaders), bodyBase64: r.body.toString('base64') }],
    };
    const specFile = join(env.dir, 'bare.json');
    writePrivate(specFile, JSON.stringify(spec));
    bare = spawnChild(process.execPath, ['--cpu-prof', '--cpu-prof-dir', bareDir, BARE_SERVER, specFile]);
    await waitForPort(port, bare, 10_000);
    const targets = [
      { name: 'credport', url: env.url, pid: daemon.pid, windows: [] as Window[], requests: 0, dir: profDir },
      { name: 'bare', url: `http://127.0.0.1:${port}`, pid: bare.pid, windows: [] as Window[], requests: 0, dir: bareDir },
    ];
    for (let round = 0; round < rounds; round++) {
      for (const t of round % 2 ? [...targets].reverse() : targets) {
        const from = monotonicUs();
        const res = await runLoad({ url: `${t.url}${path}`, connections, headers, durationS: seconds, serverPid: t.pid });
        t.windows.push({ from, to: monotonicUs() });
        t.requests += res.requests;
        console.log(
          `${t.name.padEnd(8)} ${endpoint} c=${connections} round ${round + 1}: ${Math.round(res.rps)} req/s, p99 ${res.p99Ms.toFixed(2)} ms, ` +
            `${res.serverCpuMsPer1k?.toFixed(1)} µs CPU/req, ${res.non2xx} non-2xx`,
        );
      }
    }
    await daemon.stop();
    await bare.stop();
    for (const t of targets) {
      console.log(`\n== ${t.name}`);
      for (const line of summarise(readProfile(t.dir), t.windows, t.requests, 45)) console.log(line);
    }
  } finally {
    await daemon.stop();
    await bare?.stop();
  }
  await env.close();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
