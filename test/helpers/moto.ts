/**
 * moto's server as a local S3: started on an ephemeral loopback port (it prints the port it got),
 * waited for, and killed by the test's teardown. Only S3 is used from it: moto honours If-Match
 * and If-None-Match on PutObject with 412, which is what the conditional publish relies on.
 *
 * moto checks the precondition and stores the object in two separate steps, so its threaded
 * server lets two conditional writes of the same version both pass (a lost key in about one run
 * of three with twenty writers). S3 does both as one. moto's own main is run, serving one request
 * at a time, so that the tests get S3's guarantee and test credport, not moto's race.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Moto {
  url: string;
  close(): Promise<void>;
}

/** Credentials moto accepts and checks nothing of: set in the CLI's environment by the tests only. */
export const MOTO_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDMOTOTEST00000000',
  AWS_SECRET_ACCESS_KEY: 'moto-test-secret-not-a-real-one',
  AWS_REGION: 'us-east-1',
};

export async function startMoto(): Promise<Moto> {
  const serial =
    'import moto.server as m, werkzeug.serving as w\n' +
    'run = w.run_simple\n' +
    "m.run_simple = lambda *a, **k: run(*a, **{**k, 'threaded': False})\n" +
    "m.main(['-H', '127.0.0.1', '-p', '0'])\n";
  const child: ChildProcess = spawn('python3', ['-c', serial], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONUNBUFFERED: '1' },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  let seen = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`moto did not start in 60 s: ${seen.slice(-500)}`)), 60_000);
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-4000);
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`moto exited (${code}) before listening: ${seen.slice(-500)}`));
    });
  }).catch(async (err) => {
    await close();
    throw err;
  });
  // Listening is announced just before the socket accepts: wait until it answers.
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.stdout?.resume();
  child.stderr?.resume();
  return { url, close };
}
