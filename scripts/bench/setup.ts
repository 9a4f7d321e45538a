/**
 * What every benchmark needs: a local AWS (the emulator, in this process, so
 * its counters and faults are at hand), a fresh file key published as the
 * issuer's JWKS, a config file, and the daemon as a separate process started
 * from the built CLI exactly as `credport serve` runs in production. Also the
 * small probes the measurements share: HTTP requests, RSS and CPU of a
 * process from /proc, and /metrics scraping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'smol-toml';
import { startEmulator, type Emulator } from '../../emulator/index.js';
import { defaultSubject } from '../../daemon/identity/jwt.js';
import { exportIssuer, publishedJwk } from '../../daemon/identity/issuer-documents.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import { DAEMON_NODE_FLAGS } from '../../daemon/service/node-flags.js';

export const ACCOUNT = '111122223333';

/** The package's bin, as `npm run build` leaves it beside this compiled file: the bundle users run. */
export const CLI_PATH = fileURLToPath(new URL('../../bundle/credport.cjs', import.meta.url));
/** The compiled root (dist/), where machine-readable results go. */
export const OUT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The repository root: the nearest directory above this file whose package.json is credport's. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const parsed: unknown = JSON.parse(readFileSync(pkg, 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && (parsed as { name?: unknown }).name === 'credport') return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the credport repository root above the compiled benchmark');
    dir = up;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A port free on 127.0.0.1 right now (the kernel picks it; we close and hand it to the process that binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface BenchEnvOptions {
  /** Profile names (all aws-oidc against the emulator). Default: ['default']. */
  profiles?: string[];
  refresh?: Record<string, unknown>;
  /** Called before the config is written: faults, credential lifetimes. */
  beforeStart?: (emulator: Emulator) => void;
}

export interface BenchEnv {
  dir: string;
  configFile: string;
  tokenFile: string;
  port: number;
  url: string;
  emulator: Emulator;
  /** The device key file the config names. */
  keyPath: string;
  /** The role of each profile, by profile name. */
  roleArn(profile: string): string;
  /** The ECS bearer token; read after the daemon created it. Never printed. */
  token(): string;
  close(): Promise<void>;
}

const roleArnOf = (profile: string): string => `arn:aws:iam::${ACCOUNT}:role/role-${profile}`;

/** Emulator + key + issuer documents + roles + config file; the daemon is started separately. */
export async function createBenchEnv(o: BenchEnvOptions = {}): Promise<BenchEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'credport-bench-'));
  const issuerDir = join(dir, 'issuer');
  mkdirSync(issuerDir);
  const emulator = await startEmulator({ issuerDir });
  try {
    const keyPath = join(dir, 'device-key.pem');
    const signer = FileKeySigner.create(keyPath);
    const issuer = emulator.issuerBaseUrl;
    exportIssuer(issuerDir, issuer, publishedJwk(signer.publicJwk(), signer.thumbprint));
    emulator.createOpenIDConnectProvider({ url: issuer, clientIds: ['sts.amazonaws.com'] });
    const host = issuer.replace(/^https?:\/\//, '');
    const profiles: Record<string, Record<string, unknown>> = {};
    for (const name of o.profiles ?? ['default']) {
      const roleArn = roleArnOf(name);
      emulator.createRole({
        arn: roleArn,
        maxSessionDurationSeconds: 43200,
        trust: {
          providerUrl: issuer,
          conditions: { StringEquals: { [`${host}:sub`]: defaultSubject(signer), [`${host}:aud`]: 'sts.amazonaws.com' } },
        },
      });
      profiles[name] = {
        type: 'aws-oidc',
        role_arn: roleArn,
        region: 'us-east-1',
        duration_seconds: 3600,
        sts_endpoint: emulator.stsEndpoint,
      };
    }
    const port = await freePort();
    const tokenFile = join(dir, 'token');
    const configFile = join(dir, 'config.toml');
    writeFileSync(
      configFile,
      stringify({
        // warn: the daemon logs nothing per request or per refresh, as a production daemon at its default
        // (info) logs nothing per request either; this keeps stdout from being part of what is measured.
        daemon: {
          listen: `127.0.0.1:${port}`,
          token_file: tokenFile,
          lock_file: join(dir, 'daemon.pid'),
          audit_file: join(dir, 'audit.log'),
          log_level: 'warn',
        },
        key: { backend: 'file', path: keyPath },
        oidc: { issuer },
        refresh: { ...o.refresh },
        profiles,
      }),
      { mode: 0o600 },
    );
    o.beforeStart?.(emulator);
    return {
      dir,
      configFile,
      tokenFile,
      port,
      url: `http://127.0.0.1:${port}`,
      emulator,
      keyPath,
      roleArn: roleArnOf,
      token: () => readFileSync(tokenFile, 'utf8'),
      async close() {
        await emulator.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A process the benchmark started, with the tail of its output kept for error messages. */
export interface Child {
  readonly pid: number;
  readonly proc: ChildProcess;
  /** performance.now() just before spawn. */
  readonly spawnedAt: number;
  /** The last lines the process wrote (stdout and stderr). */
  output(): string;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function spawnChild(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  const spawnedAt = performance.now();
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.once('error', (err) => {
      lines.push(`spawn failed: ${err.message}`);
      resolve(null);
    });
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error(`cannot start ${command}`);
  let stopping: Promise<void> | undefined;
  return {
    pid,
    proc,
    spawnedAt,
    output: () => lines.join('\n'),
    exited,
    stop(graceMs = 5000) {
      stopping ??= (async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/**
 * `node FLAGS dist/bundle/credport.cjs serve --config FILE`: the daemon as its systemd unit and
 * launchd plist run it, with the same node flags (service/node-flags.ts).
 */
export function spawnDaemon(configFile: string, nodeArgs: string[] = []): Child {
  return spawnChild(process.execPath, [...DAEMON_NODE_FLAGS, ...nodeArgs, CLI_PATH, 'serve', '--config', configFile]);
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** One request on its own connection (no agent), so nothing is shared between measurements. */
export function httpRequest(
  url: string,
  o: { method?: string; headers?: Record<string, string>; timeoutMs?: number; body?: string } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers, agent: false, timeout: o.timeoutMs ?? 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${o.method ?? 'GET'} ${new URL(url).pathname}`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (without sending a request). */
export async function waitForPort(port: number, child: Child | undefined, timeoutMs = 30_000, pollMs = 2): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return performance.now();
    if (child && child.proc.exitCode !== null)
      throw new Error(`process exited (${child.proc.exitCode}) before listening:\n${child.output()}`);
    if (performance.now() > deadline)
      throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms${child ? `:\n${child.output()}` : ''}`);
    await sleep(pollMs);
  }
}

/**
 * Polls until the request answers 200; connection errors count as "not yet".
 * Returns performance.now() at the moment the 200 arrived, and its body.
 */
export async function waitFor200(
  url: string,
  o: { headers?: Record<string, string>; child?: Child; timeoutMs?: number; pollMs?: number } = {},
): Promise<{ at: number; body: Buffer }> {
  const deadline = performance.now() + (o.timeoutMs ?? 60_000);
  let last = 'no answer';
  for (;;) {
    try {
      const r = await httpRequest(url, { headers: o.headers ?? {} });
      if (r.status === 200) return { at: performance.now(), body: r.body };
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (o.child && o.child.proc.exitCode !== null) throw new Error(`process exited (${o.child.proc.exitCode}):\n${o.child.output()}`);
    if (performance.now() > deadline)
      throw new Error(`${new URL(url).pathname} did not answer 200 (last: ${last})${o.child ? `:\n${o.child.output()}` : ''}`);
    await sleep(o.pollMs ?? 2);
  }
}

/** Resident set size of a process, from /proc (Linux); undefined elsewhere. */
export function readRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] !== undefined ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat (Linux; clock ticks of 1/100 s). */
export function readCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; the fields after it start past the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / 100 : undefined;
  } catch {
    return undefined;
  }
}

/** GET /metrics, parsed into name -> sum over all label sets. */
export async function scrapeMetrics(baseUrl: string): Promise<Map<string, number>> {
  const r = await httpRequest(`${baseUrl}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const out = new Map<string, number>();
  for (const line of r.body.toString('utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m?.[1] || m[3] === undefined) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) out.set(m[1], (out.get(m[1]) ?? 0) + v);
  }
  return out;
}

/** The daemon's own CPU seconds as prom-client reports them (process.cpuUsage: user + system). */
export function metricsCpuSeconds(m: Map<string, number>): number {
  const user = m.get('credport_process_cpu_user_seconds_total');
  const system = m.get('credport_process_cpu_system_seconds_total');
  if (user === undefined || system === undefined) throw new Error('/metrics has no credport_process_cpu_*_seconds_total');
  return user + system;
}

/** Writes a file only its owner can read (it may hold the bench daemon's credentials or token). */
export function writePrivate(path: string, data: string | Buffer): void {
  writeFileSync(path, data, { mode: 0o600 });
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
