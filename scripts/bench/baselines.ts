/**
 * The two servers credport's serving figures are compared with, each started
 * as its own process like the daemon, on 127.0.0.1 and a free port:
 *  - bare node:http (bare-server.ts) answering with credport's exact bytes;
 *  - nginx serving the same JSON as static files, in the foreground with one
 *    process (master_process off), no access log, config generated in a
 *    temporary directory. Debian's `nginx` is installed with apt-get when it
 *    is missing and we are root; otherwise the baseline is skipped, with why.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BareServerSpec } from './bare-server.js';
import { freePort, spawnChild, waitForPort, writePrivate, type Child } from './setup.js';

/** One endpoint to replay: the path and what credport answered on it. */
export interface CapturedResponse {
  path: string;
  status: number;
  /** Response headers as credport sent them, minus those node:http adds itself (date, connection, keep-alive). */
  headers: [string, string][];
  body: Buffer;
}

export interface RunningBaseline {
  name: string;
  url: string;
  child: Child;
  stop(): Promise<void>;
}

const BARE_SERVER = fileURLToPath(new URL('./bare-server.js', import.meta.url));

/** Headers node:http (and fastify through it) adds by itself; the bare server's node adds them the same way. */
const AUTOMATIC = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

export function replayableHeaders(rawHeaders: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (!AUTOMATIC.has(name.toLowerCase())) out.push([name, rawHeaders[i + 1]!]);
  }
  return out;
}

export async function startBareServer(dir: string, responses: CapturedResponse[]): Promise<RunningBaseline> {
  const port = await freePort();
  const spec: BareServerSpec = {
    port,
    routes: responses.map((r) => ({ path: r.path, status: r.status, headers: r.headers, bodyBase64: r.body.toString('base64') })),
  };
  // The bodies are the bench daemon's (emulator-issued) credentials: a 0600 file in our temp dir.
  const specFile = join(dir, 'bare-server.json');
  writePrivate(specFile, JSON.stringify(spec));
  const child = spawnChild(process.execPath, [BARE_SERVER, specFile]);
  await waitForPort(port, child, 10_000);
  return { name: 'bare node', url: `http://127.0.0.1:${port}`, child, stop: () => child.stop() };
}

function findOnPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

export type NginxBinary = { path: string; note?: string } | { skipped: string };

/** Finds nginx, installing Debian's package when missing and allowed (root, apt-get present). */
export function ensureNginx(log: (line: string) => void): NginxBinary {
  const found = findOnPath('nginx');
  if (found) return { path: found };
  if (process.platform !== 'linux') return { skipped: 'nginx is not installed (install it to get this baseline)' };
  if (process.getuid?.() !== 0)
    return { skipped: 'nginx is not installed and we are not root (apt-get install nginx to get this baseline)' };
  if (!findOnPath('apt-get')) return { skipped: 'nginx is not installed and there is no apt-get to install it' };
  log("nginx is missing: installing Debian's nginx with apt-get (once; needed for the nginx baseline)...");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], { env, encoding: 'utf8', timeout: 240_000 });
  let r = install();
  if (r.status !== 0) {
    // A stale or never-fetched package list is the usual reason; fetch it once and try again.
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8', timeout: 240_000 });
    r = install();
  }
  const path = findOnPath('nginx');
  if (r.status !== 0 || !path) {
    const why = (r.error?.message ?? `${r.stderr ?? ''}`.trim().split('\n').slice(-1)[0]) || `apt-get exited ${r.status}`;
    return { skipped: `nginx could not be installed with apt-get: ${why}` };
  }
  return { path, note: 'installed with apt-get by this run' };
}

/**
 * Starts nginx serving each response body as a static file at its path, with
 * the same Content-Type and Cache-Control. nginx adds its own Server, ETag-free
 * Last-Modified and Accept-Ranges headers; the bodies are identical.
 */
export async function startNginx(binary: string, dir: string, responses: CapturedResponse[]): Promise<RunningBaseline> {
  const root = join(dir, 'nginx');
  const www = join(root, 'www');
  mkdirSync(www, { recursive: true });
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(root, 'tmp', sub), { recursive: true });
  const port = await freePort();
  const locations = responses.map((r, i) => {
    const file = join(www, `body-${i}`);
    writePrivate(file, r.body);
    const header = (name: string) => r.headers.find(([n]) => n.toLowerCase() === name)?.[1];
    const type = header('content-type') ?? 'application/octet-stream';
    const cache = header('cache-control');
    return [
      `    location = ${r.path} {`,
      `      default_type "${type}";`,
      ...(cache ? [`      add_header Cache-Control "${cache}";`] : []),
      `      alias ${file};`,
      '    }',
    ].join('\n');
  });
  const conf = join(root, 'nginx.conf');
  writePrivate(
    conf,
    [
      // One process in the foreground: comparable with the single-threaded daemon, and ours to stop.
      'daemon off;',
      'master_process off;',
      'worker_processes 1;',
      `pid ${join(root, 'nginx.pid')};`,
      `error_log ${join(root, 'error.log')} warn;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      '  server_tokens off;',
      '  etag off;',
      '  sendfile on;',
      '  types { }',
      // The daemon keeps a connection for any number of requests; nginx's default would close every 1,000th.
      '  keepalive_requests 100000000;',
      '  keepalive_timeout 5s;',
      `  client_body_temp_path ${join(root, 'tmp', 'client_body')};`,
      `  proxy_temp_path ${join(root, 'tmp', 'proxy')};`,
      `  fastcgi_temp_path ${join(root, 'tmp', 'fastcgi')};`,
      `  uwsgi_temp_path ${join(root, 'tmp', 'uwsgi')};`,
      `  scgi_temp_path ${join(root, 'tmp', 'scgi')};`,
      '  server {',
      `    listen 127.0.0.1:${port};`,
      ...locations,
      '    location / { return 404; }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const child = spawnChild(binary, ['-p', root, '-c', conf, '-e', join(root, 'error.log')]);
  await waitForPort(port, child, 10_000);
  return { name: 'nginx', url: `http://127.0.0.1:${port}`, child, stop: () => child.stop() };
}
