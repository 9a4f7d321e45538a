/** Running the built `credport` command as a user would, as a real process. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The package's `bin`: the bundle the build makes (scripts/bundle.ts), which is what users run. */
export const CLI = fileURLToPath(new URL('../../bundle/credport.cjs', import.meta.url));
/** tsc's compiled tree, a file per module: for the tests that read back which modules a process loaded. */
export const MODULE_TREE_CLI = fileURLToPath(new URL('../../daemon/cli/credport.js', import.meta.url));

/**
 * The AWS SDK v3's notice that its releases from January 2027 need Node 22, which it prints once per
 * process on older Node when the first client is made. credport leaves it visible (its users should
 * see it), so tests that read the CLI's stderr look past exactly this text and nothing else.
 */
const SDK_NODE_NOTICE =
  /\(node:\d+\) (?:Warning: )?NodeVersionSupportWarning: [\s\S]*?More information can be found at: \S+\n(?:\(Use `node --trace-warnings \.\.\.` to show where the warning was created\)\n)?/;

export function withoutSdkNodeNotice(stderr: string): string {
  return stderr.replace(SDK_NODE_NOTICE, '');
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: withoutSdkNodeNotice(r.stderr) };
}

/** The CLI as a process; with `killAfterMs`, killed then (a FIFO read, say, would otherwise hang). */
export function runCliAsync(args: string[], env: NodeJS.ProcessEnv = {}, killAfterMs?: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr: withoutSdkNodeNotice(stderr) });
    });
  });
}

/** A port that was free a moment ago, for configs that need a fixed port (the CLI reads it from the config). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, entry: string = CLI): Spawned {
  const child = spawn(process.execPath, [entry, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => withoutSdkNodeNotice(err), exited };
}

/** Polls `check` every 100 ms, at most `tries` times. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, tries = 150): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not reached in time');
}
