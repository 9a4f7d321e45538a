/**
 * Ordinary accidents around the daemon process (issue 10): a lock naming a
 * pid that now belongs to another program, two starters at once, SIGHUP
 * during start-up, and a reload that changes `listen`. Real processes, real
 * sockets, loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import t, { type Test } from 'tap';
import { readRuntimeFile, runtimeFilePath } from '../daemon/service/runtime-file.js';
import { CLI, freePort, runCliAsync, spawnCli, waitFor, type Spawned } from './helpers/cli.js';
import { roleArnFor, startStack, type Stack } from './helpers/stack.js';

async function healthy(port: number): Promise<Record<string, unknown> | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/health`);
    return r.status > 0 ? ((await r.json()) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function serving(port: number): Promise<Record<string, unknown>> {
  return waitFor(() => healthy(port));
}

async function stackFor(t: Test): Promise<{ stack: Stack; port: number; env: Record<string, string> }> {
  const port = await freePort();
  const stack = await startStack({ startDaemon: false, daemon: { listen: `127.0.0.1:${port}`, log_level: 'debug' } });
  t.teardown(() => stack.close());
  return { stack, port, env: { CREDPORT_CONFIG: stack.configFile } };
}

function serve(t: Test, env: Record<string, string>): Spawned {
  const d = spawnCli(['serve'], env);
  t.teardown(() => d.child.kill('SIGKILL'));
  return d;
}

/**
 * `serve` without tap's process-tracking preload: tap puts an --import into every child's
 * NODE_OPTIONS whose signal-exit handlers catch SIGHUP, which would hide the default action
 * (death) that a real daemon gets.
 */
function serveUntraced(t: Test, env: Record<string, string>): Spawned {
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, CLI, 'serve'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** An unrelated live process, as after a reboot that gave the old daemon's pid to another program. */
function bystander(t: Test): ChildProcess & { pid: number } {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  return child as ChildProcess & { pid: number };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Neither exited nor killed by a signal (a process killed by SIGHUP has exitCode null, signalCode set). */
function running(d: Spawned): boolean {
  return d.child.exitCode === null && d.child.signalCode === null;
}

async function stop(t: Test, d: Spawned): Promise<void> {
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0, 'clean stop');
}

t.test('a stale lock whose pid now belongs to another program: never signalled, taken over', async (t) => {
  const { stack, port, env } = await stackFor(t);
  const lock = stack.config.daemon.lockFile;
  const other = bystander(t);
  for (const content of [
    `${other.pid}\n`, // the format of older versions: a bare pid
    `${JSON.stringify({ pid: other.pid, start: 'another-boot:12345', exe: process.execPath, instance: 'old' })}\n`,
  ]) {
    writeFileSync(lock, content, { mode: 0o600 });
    const r = await runCliAsync(['reload'], env);
    t.equal(r.status, 4, `reload: the daemon is not running (${r.stderr.trim()})`);
    t.ok(isAlive(other.pid), 'the unrelated process was not signalled');
    const status = await runCliAsync(['status'], env);
    t.equal(status.status, 4, 'status: not running');
    const d = serve(t, env);
    await serving(port);
    t.equal(JSON.parse(readFileSync(lock, 'utf8')).pid, d.child.pid, 'the new daemon took the lock over');
    t.equal(statSync(lock).mode & 0o777, 0o600);
    t.ok(isAlive(other.pid), 'and left the other program alone');
    await stop(t, d);
    t.notOk(existsSync(lock), 'lock removed on a clean stop');
  }
});

t.test('two serve processes started at once: exactly one runs, the other says so', async (t) => {
  const { stack, port, env } = await stackFor(t);
  for (let round = 0; round < 3; round++) {
    const a = serve(t, env);
    const b = serve(t, env);
    // One of them exits (bounded by waitFor); the other keeps serving.
    const loser = await waitFor(() => (!running(a) ? a : !running(b) ? b : undefined), 300);
    const winner = loser === a ? b : a;
    t.equal(loser.child.exitCode, 1, `round ${round}: the second exits 1`);
    t.match(loser.stderr(), new RegExp(`already running \\(pid ${winner.child.pid}, lock `), 'naming the running pid');
    await serving(port);
    t.ok(running(winner), 'the first keeps running');
    t.equal(JSON.parse(readFileSync(stack.config.daemon.lockFile, 'utf8')).pid, winner.child.pid);
    await stop(t, winner);
  }
});

t.test('SIGHUP during start-up: the daemon survives and applies the reload once ready', async (t) => {
  const { stack, port, env } = await stackFor(t);
  stack.emulator.createRole({
    arn: roleArnFor('role-extra'),
    trust: {
      providerUrl: stack.emulator.issuerBaseUrl,
      conditions: {
        StringEquals: { [`${stack.emulator.issuerBaseUrl.replace(/^http:\/\//, '')}:sub`]: `device:${stack.signer.thumbprint}` },
      },
    },
  });
  const good = readFileSync(stack.configFile, 'utf8');
  // The lock is taken before the slow part (key, server, listen). The daemon is frozen the moment
  // its lock appears (inotify, then SIGSTOP), so the first SIGHUP lands in start-up for certain.
  const lockDir = dirname(stack.config.daemon.lockFile);
  const lockName = basename(stack.config.daemon.lockFile);
  let d: Spawned | undefined;
  let frozen = false;
  const watcher = watch(lockDir, (_event, name) => {
    if (name === lockName && d && !frozen && existsSync(stack.config.daemon.lockFile)) {
      frozen = d.child.kill('SIGSTOP');
    }
  });
  t.teardown(() => watcher.close());
  d = serveUntraced(t, env);
  for (let i = 0; i < 3000 && !frozen && running(d); i++) await new Promise((r) => setTimeout(r, 10));
  watcher.close();
  t.ok(frozen, 'the daemon was caught right after taking its lock');
  // A config changed after it was read: only a reload can bring this profile in.
  writeFileSync(
    stack.configFile,
    `${good}\n[profiles.extra]\ntype = "aws-oidc"\nrole_arn = "${roleArnFor('role-extra')}"\nsts_endpoint = "${stack.emulator.stsEndpoint}"\n`,
  );
  d.child.kill('SIGHUP');
  d.child.kill('SIGCONT');
  let sent = 0;
  for (let i = 0; i < 100 && running(d) && !(await healthy(port)); i++) {
    d.child.kill('SIGHUP');
    sent++;
    await new Promise((r) => setTimeout(r, 5));
  }
  t.comment(`sent ${sent + 1} SIGHUP(s) during start-up`);
  t.ok(running(d), `still running (signal ${d.child.signalCode}, exit ${d.child.exitCode})`);
  const health = await waitFor(async () => {
    const h = (await healthy(port)) as { profiles?: Record<string, unknown> } | undefined;
    return h?.profiles && 'extra' in h.profiles ? h : undefined;
  }, 100);
  t.ok('extra' in (health.profiles ?? {}), 'the reload asked for during start-up was applied');
  await stop(t, d);
});

t.test('a reload that changes listen: reload and status find the daemon and say a restart is needed', async (t) => {
  const { stack, port, env } = await stackFor(t);
  const d = serve(t, env);
  await serving(port);
  const runtime = runtimeFilePath(stack.config.daemon.lockFile);
  const info = readRuntimeFile(runtime);
  t.equal(info?.pid, d.child.pid, 'runtime file names the daemon');
  t.equal(info?.url, `http://127.0.0.1:${port}`);
  t.same(info?.listen, [`127.0.0.1:${port}`]);
  t.equal(statSync(runtime).mode & 0o777, 0o600, 'runtime file is private');
  const newPort = await freePort();
  writeFileSync(stack.configFile, readFileSync(stack.configFile, 'utf8').replace(`127.0.0.1:${port}`, `127.0.0.1:${newPort}`));
  const r = await runCliAsync(['reload'], env);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /reloaded .*restart needed: daemon\.listen/);
  t.match(r.stdout, new RegExp(`serving at http://127\\.0\\.0\\.1:${port}`), 'names where it still serves');
  const status = await runCliAsync(['status'], env);
  t.not(status.status, 4, `status finds the daemon: ${status.stderr}`);
  t.match(status.stdout, /restart needed: daemon\.listen/);
  t.ok(await healthy(port), 'still serving on the old port');
  // A second, unrelated reload must not hide that the socket is still the old one.
  const again = await runCliAsync(['reload'], env);
  t.match(again.stdout, /restart needed: daemon\.listen/);
  await stop(t, d);
  t.notOk(existsSync(runtime), 'runtime file removed at exit');
});
