/**
 * moto's server on an ephemeral loopback port, for tests that need a local AWS API (CloudFormation,
 * S3). Started per test file and killed in teardown; what it accepts is moto's, not AWS's.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { tool } from './tools.js';

export const motoServer = tool(
  'moto server (python3 -m moto.server)',
  () => spawnSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore', timeout: 30_000 }).status === 0,
  "pip install 'moto[server]'",
);

export interface MotoServer {
  endpoint: string;
  close(): Promise<void>;
}

export function startMoto(): Promise<MotoServer> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let seen = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`moto did not start: ${seen.slice(0, 500)}`));
    }, 60_000);
    const onData = (d: Buffer): void => {
      if (seen.length < 10_000) seen += d.toString();
      const port = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(seen)?.[1];
      if (port === undefined) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      // Keep draining so a chatty server never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
      resolve({
        endpoint: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
