/**
 * `credport token rotate` against a real `credport serve`: the JS SDK's container provider, which
 * reads the token file on every call, keeps getting credentials across the rotation, and the old
 * token is refused from then on.
 */
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { fromHttp } from '@aws-sdk/credential-providers';
import t from 'tap';
import { rotateTokenFile } from '../daemon/server/token.js';
import { runCliAsync, spawnCli, waitFor } from './helpers/cli.js';
import { startStack } from './helpers/stack.js';

t.test('token rotate: the SDK keeps working, the old token stops', async (t) => {
  const stack = await startStack({ startDaemon: false });
  t.teardown(() => stack.close());
  const serve = spawnCli(['serve', '--config', stack.configFile]);
  t.teardown(() => serve.child.kill('SIGKILL'));
  const runtime = `${stack.dir}/daemon.runtime.json`;
  await waitFor(() => (existsSync(runtime) ? true : undefined), 300);
  const url = JSON.parse(readFileSync(runtime, 'utf8')).url as string;
  const tokenFile = stack.config.daemon.tokenFile;
  const uri = `${url}/v1/credentials`;
  await waitFor(async () => ((await fetch(`${url}/health`).catch(() => undefined))?.status === 200 ? true : undefined), 300);

  const sdk = fromHttp({ awsContainerCredentialsFullUri: uri, awsContainerAuthorizationTokenFile: tokenFile });
  const first = await sdk();
  t.ok(first.accessKeyId, 'credentials before the rotation');
  const ask = (token: string) => fetch(uri, { headers: { authorization: token } }).then((r) => r.status);
  const old = readFileSync(tokenFile, 'utf8');
  t.equal(await ask(old), 200);

  const r = await runCliAsync(['token', 'rotate', '--config', stack.configFile]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /now accepts only the new one/);
  t.notMatch(r.stdout + r.stderr, old, 'no token printed');
  const fresh = readFileSync(tokenFile, 'utf8');
  t.not(fresh, old, 'a new token in the file');
  t.equal(await ask(old), 401, 'the old token is refused');
  t.equal(await ask(fresh), 200, 'the new one is accepted');
  const second = await sdk();
  t.ok(second.accessKeyId, 'the same SDK provider gets credentials after the rotation');

  // Replaced before any signal (the rotation's file written, the daemon not yet told): a request
  // with the new token makes the daemon look at the file again, and is served.
  const unsignalled = rotateTokenFile(tokenFile);
  t.equal(await ask(unsignalled), 200, 'a token rotated on disk is taken up on first use');
  t.equal(await ask(fresh), 401, 'and the one before it is refused');
  t.ok((await sdk()).accessKeyId);

  // A file that is not a usable token does not replace one that is.
  const kept = readFileSync(tokenFile, 'utf8');
  chmodSync(tokenFile, 0o644);
  t.equal(await ask('x'.repeat(43)), 401);
  t.equal(await ask(kept), 200, 'an unsafe token file leaves the current token in force');
  chmodSync(tokenFile, 0o600);
  serve.child.kill('SIGTERM');
  await serve.exited;
});
