/**
 * A software TPM 2.0 behind the same stack a machine with a real TPM runs: swtpm (the TPM), tpm2-abrmd
 * (the resource manager, on a private session D-Bus so it neither needs nor touches the system bus) and
 * tpm2-pkcs11 (the PKCS#11 module credport loads), its store initialised with tpm2_ptool in a temporary
 * directory. Ports are ephemeral; every process started here is stopped by close().
 *
 * The module reads TPM2_PKCS11_TCTI, TPM2_PKCS11_STORE and DBUS_SESSION_BUS_ADDRESS in C_Initialize, so
 * they are set in this process's environment before any use of the module, and given in `env` to the
 * CLI processes a test starts.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tool } from './tools.js';

const MODULE_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so', // Debian, Ubuntu (amd64)
  '/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so', // Debian, Ubuntu (arm64)
  '/usr/lib64/pkcs11/libtpm2_pkcs11.so', // Fedora
  '/usr/lib/pkcs11/libtpm2_pkcs11.so',
];
export const TPM2_PKCS11_MODULE = process.env.TPM2_PKCS11_MODULE ?? MODULE_CANDIDATES.find((p) => existsSync(p)) ?? MODULE_CANDIDATES[0]!;

const TABRMD_TCTI = ['/usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so.0', '/usr/lib/aarch64-linux-gnu/libtss2-tcti-tabrmd.so.0'];

const runs = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

export const softTpm = tool(
  'a software TPM stack (swtpm, tpm2-abrmd and its TCTI, tpm2-tools, tpm2_ptool, libtpm2_pkcs11.so, dbus-daemon)',
  () =>
    existsSync(TPM2_PKCS11_MODULE) &&
    TABRMD_TCTI.some((p) => existsSync(p)) &&
    runs('swtpm', ['--version']) &&
    runs('tpm2-abrmd', ['--version']) &&
    runs('tpm2_getrandom', ['--version']) &&
    runs('tpm2_ptool', ['--help']) &&
    runs('dbus-daemon', ['--version']),
  'apt-get install swtpm swtpm-tools tpm2-abrmd libtss2-tcti-tabrmd0 tpm2-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools dbus',
);

export interface SoftTpm {
  module: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** The temporary directory holding the TPM's state and the tpm2-pkcs11 store. */
  dir: string;
  /** What a process using the module needs (also set in this process). */
  env: Record<string, string>;
  /** Runs tpm2_ptool against this store; throws with its output on failure. */
  ptool(args: string[]): string;
  /** Adds a P-256 key to the token with tpm2_ptool (the way a user without credport init makes one). */
  addKey(label: string): void;
  /** Stops the resource manager; the TPM keeps its state. Returns a function that starts it again. */
  stopResourceManager(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** A port pair (N, N+1) both free a moment ago: swtpm's control port must be its server port + 1. */
async function freePortPair(): Promise<number> {
  const listen = (port: number) =>
    new Promise<ReturnType<typeof createServer> | undefined>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(undefined));
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    const a = await listen(0);
    if (!a) continue;
    const port = (a.address() as { port: number }).port;
    const b = port < 65535 ? await listen(port + 1) : undefined;
    await new Promise((r) => a.close(r));
    if (b) {
      await new Promise((r) => b.close(r));
      return port;
    }
  }
  throw new Error('no free pair of adjacent loopback ports for swtpm');
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1' });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

function exited(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

async function stop(p: ChildProcess): Promise<void> {
  if (exited(p)) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const killer = setTimeout(() => p.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(killer);
}

/** Bounded wait for `ready`, failing early when the process it waits on has died. */
async function waitFor(what: string, p: ChildProcess, ready: () => Promise<boolean> | boolean, output: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await ready()) return;
    if (exited(p)) throw new Error(`${what} exited: ${output()}`);
    await sleep(100);
  }
  throw new Error(`${what} did not become ready: ${output()}`);
}

function started(cmd: string, args: string[], env: NodeJS.ProcessEnv): { p: ChildProcess; output: () => string } {
  const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // Bounded: only the start of what a helper says matters when it fails.
  const keep = (d: Buffer) => {
    if (out.length < 8192) out += d.toString('utf8');
  };
  p.stdout?.on('data', keep);
  p.stderr?.on('data', keep);
  return { p, output: () => out.trim() };
}

export async function startSoftTpm(opts: { label?: string; pin?: string; soPin?: string } = {}): Promise<SoftTpm> {
  const dir = mkdtempSync(join(tmpdir(), 'credport-tpm-'));
  const state = join(dir, 'state');
  const store = join(dir, 'store');
  mkdirSync(state);
  mkdirSync(store);
  const processes: ChildProcess[] = [];
  const tokenLabel = opts.label ?? 'credport';
  const pin = opts.pin ?? '1234';
  const soPin = opts.soPin ?? '5678';
  let abrmd: ChildProcess | undefined;

  const close = async () => {
    if (abrmd) await stop(abrmd);
    for (const p of processes.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePortPair();
      const tpm = started(
        'swtpm',
        [
          'socket',
          '--tpm2',
          '--server',
          `type=tcp,port=${port},bindaddr=127.0.0.1`,
          '--ctrl',
          `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
          '--tpmstate',
          `dir=${state}`,
          '--flags',
          'not-need-init,startup-clear',
        ],
        process.env,
      );
      try {
        await waitFor('swtpm', tpm.p, () => accepts(port), tpm.output);
        processes.push(tpm.p);
        break;
      } catch (err) {
        await stop(tpm.p);
        // Someone took a port between the probe and swtpm's bind: try another pair, a few times.
        if (attempt >= 4) throw err;
      }
    }

    const bus = started('dbus-daemon', ['--session', '--print-address=1', '--nofork', '--nopidfile'], process.env);
    processes.push(bus.p);
    let busAddress = '';
    await waitFor(
      'dbus-daemon',
      bus.p,
      () => {
        const line = bus.output().split('\n')[0] ?? '';
        if (line.startsWith('unix:')) busAddress = line;
        return busAddress !== '';
      },
      bus.output,
    );

    const env: Record<string, string> = {
      DBUS_SESSION_BUS_ADDRESS: busAddress,
      TPM2_PKCS11_TCTI: 'tabrmd:bus_type=session',
      TPM2TOOLS_TCTI: 'tabrmd:bus_type=session',
      TPM2_PKCS11_STORE: store,
      // The TSS logs every failed TPM call to stderr; the recovery test makes many on purpose.
      TSS2_LOG: 'all+none',
    };
    Object.assign(process.env, env);
    const childEnv = { ...process.env, ...env };

    const startAbrmd = async () => {
      const args = ['--session', `--tcti=swtpm:host=127.0.0.1,port=${port}`];
      if (process.getuid?.() === 0) args.push('--allow-root');
      const rm = started('tpm2-abrmd', args, childEnv);
      abrmd = rm.p;
      // Ready when a client can reach the TPM through it.
      await waitFor('tpm2-abrmd', rm.p, () => runsWith('tpm2_getrandom', ['8'], childEnv), rm.output);
    };
    await startAbrmd();

    const ptool = (args: string[]): string => {
      const r = spawnSync('tpm2_ptool', [...args, `--path=${store}`], { env: childEnv, encoding: 'utf8', timeout: 60_000 });
      if (r.status !== 0) throw new Error(`tpm2_ptool ${args[0]} failed: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    const primary = /id:\s*(\d+)/.exec(ptool(['init']))?.[1];
    if (primary === undefined) throw new Error('tpm2_ptool init printed no primary object id');
    ptool(['addtoken', `--pid=${primary}`, `--label=${tokenLabel}`, `--sopin=${soPin}`, `--userpin=${pin}`]);

    return {
      module: TPM2_PKCS11_MODULE,
      tokenLabel,
      pin,
      soPin,
      dir,
      env,
      ptool,
      addKey(label: string) {
        ptool(['addkey', `--label=${tokenLabel}`, `--key-label=${label}`, `--userpin=${pin}`, '--algorithm=ecc256']);
      },
      async stopResourceManager() {
        if (abrmd) await stop(abrmd);
        abrmd = undefined;
        return startAbrmd;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function runsWith(cmd: string, args: string[], env: NodeJS.ProcessEnv): boolean {
  return spawnSync(cmd, args, { env, stdio: 'ignore', timeout: 10_000 }).status === 0;
}
