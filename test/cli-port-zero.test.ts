/**
 * A daemon that listens on port 0 (the config names no fixed port) is found by the CLI through its
 * runtime file: `credport env` prints the port it really has, and `credport auth` gets credentials
 * from it rather than falling back to a direct fetch.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { runCliAsync, spawnCli, waitFor } from './helpers/cli.js';
import { startStack } from './helpers/stack.js';

t.test('env, auth and profiles find a port-0 daemon by its runtime file', async (t) => {
  const stack = await startStack({ startDaemon: false });
  t.teardown(() => stack.close());
  const serve = spawnCli(['serve', '--config', stack.configFile]);
  t.teardown(() => serve.child.kill('SIGKILL'));
  const runtime = `${stack.dir}/daemon.runtime.json`;
  await waitFor(() => (existsSync(runtime) ? true : undefined), 300);
  const env = await runCliAsync(['env', '--config', stack.configFile]);
  t.equal(env.status, 0, env.stderr);
  const port = Number(/AWS_CONTAINER_CREDENTIALS_FULL_URI='http:\/\/127\.0\.0\.1:(\d+)\/v1\/credentials'/.exec(env.stdout)?.[1]);
  t.ok(port > 0, `env prints the real port (${port}), not 0`);
  const h = await waitFor(async () => {
    const r = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    return r?.status === 200 ? r : undefined;
  }, 300);
  t.equal(h.status, 200, 'the daemon answers there');
  const stsBefore = stack.emulator.stats.stsCalls;
  const auth = await runCliAsync(['auth', '--config', stack.configFile]);
  t.equal(auth.status, 0, auth.stderr);
  t.equal(stack.emulator.stats.stsCalls, stsBefore, 'auth was answered from the daemon, with no STS call of its own');
  const profiles = await runCliAsync(['profiles', '--json', '--config', stack.configFile]);
  t.match(JSON.parse(profiles.stdout), { daemon: { running: true }, profiles: [{ state: 'ok' }] }, 'profiles sees the running daemon');
  serve.child.kill('SIGTERM');
});
