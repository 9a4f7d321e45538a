/**
 * The daemon as a real `credport serve` process for the hostile-input tests: its memory and open file
 * descriptors are its own (so RSS before/after an attack means something), a crash shows as an exit,
 * and its whole stdout/stderr can be scanned for secrets.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readRuntimeFile, runtimeFilePath } from '../../daemon/service/runtime-file.js';
import { spawnCli, waitFor, type Spawned } from './cli.js';
import { exchange } from './hostile-http.js';
import { startStack, type Stack, type StackOptions } from './stack.js';

export interface DaemonProcess {
  stack: Stack;
  port: number;
  pid: number;
  /** `127.0.0.1:PORT`: the Host header SDKs send. */
  goodHost: string;
  /** The ECS bearer token. */
  token: string;
  proc: Spawned;
  /** The process has not exited. */
  alive(): boolean;
  /** Resident set size in bytes: /proc/PID/status on Linux, else the daemon's own metric. */
  rssBytes(): Promise<number>;
  /** The daemon's open file descriptors (Linux), or undefined where /proc is missing. */
  openFds(): number | undefined;
  /** A GET /health over a fresh connection: the status, or 0 if nothing answered. */
  health(): Promise<number>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL if it lingers; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnDaemonOptions {
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** Passed to startStack (the daemon table is merged with listen and log level). */
  stack?: Omit<StackOptions, 'startDaemon'>;
  /** Wait for /health to be 200 (credentials held) rather than any answer. Default true. */
  waitHealthy?: boolean;
  /** More environment for the process (NODE_OPTIONS, say). */
  env?: NodeJS.ProcessEnv;
  /** The CLI file to run (default: the bundle; MODULE_TREE_CLI to trace module loads). */
  entry?: string;
}

export async function spawnDaemon(o: SpawnDaemonOptions = {}): Promise<DaemonProcess> {
  // Port 0, and the port read back from the runtime file this child wrote: a port picked free beforehand
  // can be taken by another test's daemon in between, whose /health would then pass for this one's.
  const stack = await startStack({
    ...o.stack,
    startDaemon: false,
    daemon: { listen: '127.0.0.1:0', log_level: o.logLevel ?? 'info', ...o.stack?.daemon },
  });
  const proc = spawnCli(['serve'], { ...o.env, CREDPORT_CONFIG: stack.configFile }, o.entry);
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error('credport serve did not start');
  const runtimeFile = runtimeFilePath(stack.config.daemon.lockFile);
  let port = 0;
  try {
    await waitFor(() => {
      if (proc.child.exitCode !== null) return true;
      const info = readRuntimeFile(runtimeFile);
      const bound = info?.pid === pid ? /:(\d+)$/.exec(info.listen[0] ?? '') : null;
      if (!bound) return undefined;
      port = Number(bound[1]);
      return true;
    }, 300);
  } catch (err) {
    proc.child.kill('SIGKILL');
    await stack.close();
    throw new Error(`credport serve wrote no runtime file: ${(err as Error).message}\n${proc.stderr()}`);
  }
  const goodHost = `127.0.0.1:${port}`;
  const health = async (): Promise<number> => {
    const r = await exchange(port, `GET /health HTTP/1.1\r\nHost: ${goodHost}\r\nConnection: close\r\n\r\n`, { maxMs: 5000 });
    return r.responses.find((x) => x.status >= 200)?.status ?? 0;
  };
  const want = o.waitHealthy === false ? (s: number) => s > 0 : (s: number) => s === 200;
  try {
    await waitFor(async () => (proc.child.exitCode !== null ? true : want(await health()) ? true : undefined), 200);
  } catch (err) {
    proc.child.kill('SIGKILL');
    await stack.close();
    throw new Error(`credport serve did not become ready: ${(err as Error).message}\n${proc.stderr()}`);
  }
  if (proc.child.exitCode !== null) {
    await stack.close();
    throw new Error(`credport serve exited with ${proc.child.exitCode}: ${proc.stderr()}`);
  }
  let stopped: Promise<number | null> | undefined;
  const d: DaemonProcess = {
    stack,
    port,
    pid,
    goodHost,
    token: stack.token(),
    proc,
    alive: () => proc.child.exitCode === null && proc.child.signalCode === null,
    async rssBytes() {
      try {
        const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        if (kb) return Number(kb) * 1024;
      } catch {
        // no /proc (macOS): ask the daemon
      }
      const r = await exchange(port, `GET /metrics HTTP/1.1\r\nHost: ${goodHost}\r\nConnection: close\r\n\r\n`);
      const text = r.responses[0]?.body.toString('utf8') ?? '';
      const m = /^credport_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
      if (!m?.[1]) throw new Error("cannot read the daemon's RSS from /proc or /metrics");
      return Number(m[1]);
    },
    openFds() {
      try {
        return readdirSync(`/proc/${pid}/fd`).length;
      } catch {
        return undefined;
      }
    },
    health,
    output: () => `${proc.stdout()}${proc.stderr()}`,
    stop() {
      if (stopped) return stopped;
      stopped = (async () => {
        if (d.alive()) {
          proc.child.kill('SIGTERM');
          const killer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
          const code = await proc.exited;
          clearTimeout(killer);
          await stack.close();
          return code;
        }
        await stack.close();
        return proc.child.exitCode;
      })();
      return stopped;
    },
  };
  return d;
}
