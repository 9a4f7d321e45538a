/**
 * The `credport` command as a real process: help and exit codes, init, the
 * daemon under `serve`, and the commands that talk to it.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, runCli, runCliAsync, spawnCli, waitFor } from './helpers/cli.js';
import { startStack } from './helpers/stack.js';

const COMMANDS = [
  'init',
  'serve',
  'auth',
  'env',
  'exec',
  'configure aws',
  'profiles',
  'completion',
  'status',
  'reload',
  'logs',
  'doctor',
  'service',
  'key show',
  'key delete',
  'cert csr',
  'cert import',
  'cert show',
  'ca init',
  'ca issue',
  'oidc export',
  'setup aws',
  'demo',
  'audit',
];

t.test('--help everywhere, usage errors exit 2 on one line', async (t) => {
  const top = runCli(['--help']);
  t.equal(top.status, 0);
  for (const c of COMMANDS) t.match(top.stdout, new RegExp(`\\n  ${c} `), `lists ${c}`);
  t.match(top.stdout, /Exit codes:/);
  for (const c of COMMANDS) {
    const r = runCli([...c.split(' '), '--help']);
    t.equal(r.status, 0, `${c} --help exits 0`);
    t.match(r.stdout, new RegExp(`^Usage: credport ${c}`), `${c} --help prints its usage`);
  }
  t.equal(runCli([]).status, 2, 'no command: usage, exit 2');
  const unknown = runCli(['frobnicate']);
  t.equal(unknown.status, 2);
  t.equal(unknown.stderr.trim().split('\n').length, 1, 'one line');
  t.match(unknown.stderr, /unknown command 'frobnicate'.*credport --help/);
  const badFlag = runCli(['status', '--bogus']);
  t.equal(badFlag.status, 2);
  t.match(badFlag.stderr, /--bogus.*credport status --help/);
  t.equal(runCli(['oidc']).status, 2, 'group without subcommand');
  t.match(runCli(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('init creates key and config, keeps both on a second run, refuses bad values', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'credport-home-'));
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_STATE_HOME: join(home, 'state') };
  const bad = runCli(['init', '--role-arn', 'not-an-arn'], env);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /role_arn/);
  t.notOk(existsSync(join(home, 'cfg', 'credport', 'config.toml')), 'nothing written on bad input');
  t.notOk(existsSync(join(home, 'state', 'credport', 'device-key.pem')), 'no key made on bad input');
  const r = runCli(
    ['init', '--issuer', 'https://issuer.example', '--role-arn', 'arn:aws:iam::111122223333:role/dev', '--listen', '127.0.0.1:8080'],
    env,
  );
  t.equal(r.status, 0, r.stderr);
  const key = join(home, 'state', 'credport', 'device-key.pem');
  t.equal(statSync(key).mode & 0o777, 0o600);
  const kid = /kid:\s+(\S+)/.exec(r.stdout)?.[1];
  t.ok(kid, 'prints the kid');
  t.match(readFileSync(join(home, 'cfg', 'credport', 'config.toml'), 'utf8'), /issuer = "https:\/\/issuer.example"/);
  const again = runCli(['init'], env);
  t.equal(again.status, 0);
  t.match(again.stdout, /\(kept/);
  t.equal(/kid:\s+(\S+)/.exec(again.stdout)?.[1], kid, 'same key');
  const exp = runCli(['oidc', 'export', join(home, 'pub')], env);
  t.equal(exp.status, 0, exp.stderr);
  const jwks = JSON.parse(readFileSync(join(home, 'pub', '.well-known', 'jwks.json'), 'utf8')) as { keys: Array<{ kid: string }> };
  t.same(
    jwks.keys.map((k) => k.kid),
    [kid],
  );
  const show = runCli(['key', 'show', '--json'], env);
  t.equal(show.status, 0, show.stderr);
  const shown = JSON.parse(show.stdout) as { thumbprint: string; backend: string; jwk: { kid: string; x: string } };
  t.equal(shown.thumbprint, kid);
  t.equal(shown.backend, 'file');
  t.equal(shown.jwk.kid, kid, 'the JWK as published');
  t.notMatch(show.stdout, /"d"/, 'no private member');
  const again2 = runCli(['init', '--backend', 'pkcs11'], env);
  t.equal(again2.status, 2, 'backend flags with an existing config: usage error');
  t.match(again2.stderr, /already exists/);
  chmodSync(key, 0o644);
  const insecure = runCli(['oidc', 'export', join(home, 'pub')], env);
  t.equal(insecure.status, 3, 'insecure key: config-class exit code');
  t.match(insecure.stderr, /readable by others.*chmod 600/);
  t.equal(runCli(['status'], { ...env, CREDPORT_CONFIG: join(home, 'nope.toml') }).status, 3, 'missing config: exit 3');
  chmodSync(key, 0o600);
  const noTty = runCli(['key', 'delete'], env);
  t.equal(noTty.status, 2, 'delete without a terminal and without --yes is refused');
  t.ok(existsSync(key), 'key kept');
  const del = runCli(['key', 'delete', '--yes'], env);
  t.equal(del.status, 0, del.stderr);
  t.notOk(existsSync(key), 'key deleted');
  t.match(del.stdout, /remove its kid from the published JWKS/);
});

t.test('serve, then status, auth, env against the running daemon; SIGTERM stops it cleanly', async (t) => {
  const port = await freePort();
  const stack = await startStack({ startDaemon: false, daemon: { listen: `127.0.0.1:${port}`, log_level: 'trace' } });
  t.teardown(() => stack.close());
  const env = { CREDPORT_CONFIG: stack.configFile };
  const down = runCli(['status'], env);
  t.equal(down.status, 4, 'status with no daemon: exit 4');
  t.match(down.stderr, /not running.*credport serve/);

  const daemon = spawnCli(['serve'], env);
  t.teardown(() => daemon.child.kill('SIGKILL'));
  const health = await waitFor(async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      return r.status === 200 ? ((await r.json()) as { status: string }) : undefined;
    } catch {
      return undefined;
    }
  });
  t.equal(health.status, 'ok');

  const status = await runCliAsync(['status'], env);
  t.equal(status.status, 0, status.stderr);
  t.match(status.stdout, /default\*\s+ok\s+arn:aws:iam::111122223333:role\/role-default/);
  const json = await runCliAsync(['status', '--json'], env);
  t.equal((JSON.parse(json.stdout) as { profiles: Record<string, { state: string }> }).profiles.default?.state, 'ok');

  const auth = await runCliAsync(['auth'], env);
  t.equal(auth.status, 0, auth.stderr);
  const cp = JSON.parse(auth.stdout) as Record<string, unknown>;
  t.equal(cp.Version, 1);
  const issued = stack.emulator.issued(String(cp.AccessKeyId));
  t.ok(issued, 'credentials from the emulator');
  t.equal(cp.SecretAccessKey, issued?.secretAccessKey);
  t.equal(cp.SessionToken, issued?.sessionToken);
  t.match(String(cp.Expiration), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.equal(stack.emulator.stats.stsCalls, 1, "auth used the daemon's cache, no extra STS call");
  const envFmt = await runCliAsync(['auth', '--format', 'env'], env);
  t.match(envFmt.stdout, new RegExp(`^export AWS_ACCESS_KEY_ID='${String(cp.AccessKeyId)}'\\n`, 'm'));
  t.match(envFmt.stdout, /^export AWS_CREDENTIAL_EXPIRATION='/m);
  t.equal((await runCliAsync(['auth', '--format', 'yaml'], env)).status, 2);
  t.equal((await runCliAsync(['auth', '--profile', 'nope'], env)).status, 2);

  const exports = await runCliAsync(['env'], env);
  t.equal(exports.status, 0);
  t.match(exports.stdout, new RegExp(`^export AWS_CONTAINER_CREDENTIALS_FULL_URI='http://127.0.0.1:${port}/v1/credentials'$`, 'm'));
  t.match(exports.stdout, new RegExp(`^export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE='${stack.config.daemon.tokenFile}'$`, 'm'));
  t.notMatch(exports.stdout, new RegExp(stack.token()), 'the token itself is not printed by default');
  const inline = await runCliAsync(['env', '--inline-token', '--imds'], env);
  t.match(inline.stdout, new RegExp(`^export AWS_CONTAINER_AUTHORIZATION_TOKEN='${stack.token()}'$`, 'm'));
  t.match(inline.stdout, new RegExp(`^export AWS_EC2_METADATA_SERVICE_ENDPOINT='http://127.0.0.1:${port}/'$`, 'm'));

  // A second daemon with the same config: the lock names the running pid; exit 1.
  const second = await runCliAsync(['serve'], env);
  t.equal(second.status, 1);
  t.match(second.stderr, new RegExp(`already running \\(pid ${daemon.child.pid}`));

  daemon.child.kill('SIGTERM');
  t.equal(await daemon.exited, 0, 'SIGTERM: clean exit 0');
  const logs = daemon.stdout();
  t.match(logs, /"msg":"credentials refreshed"/, 'JSON logs on stdout when not a terminal');
  for (const secret of [stack.token(), String(cp.SecretAccessKey), String(cp.SessionToken)]) {
    t.notOk(logs.includes(secret) || daemon.stderr().includes(secret), 'no secret in the daemon output');
  }
});

t.test('auth without a daemon fetches directly with the key', async (t) => {
  const port = await freePort();
  // A second profile whose key file does not exist must not stop the default one.
  const stack = await startStack({
    startDaemon: false,
    daemon: { listen: `127.0.0.1:${port}` },
    profiles: {
      default: {},
      broken: {
        type: 'aws-rolesanywhere',
        certificate: '/nonexistent/device.pem',
        private_key: '/nonexistent/device.key',
        trust_anchor_arn: 'arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555',
        profile_arn: 'arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000',
        role_arn: 'arn:aws:iam::111122223333:role/edge',
      },
    },
  });
  t.teardown(() => stack.close());
  const r = await runCliAsync(['auth', '--format', 'json'], { CREDPORT_CONFIG: stack.configFile });
  t.equal(r.status, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { AccessKeyId: string; SessionToken: string };
  t.equal(stack.emulator.issued(body.AccessKeyId)?.sessionToken, body.SessionToken);
  stack.emulator.setFault({
    kind: 'error',
    status: 403,
    code: 'AccessDenied',
    message: 'Not authorized to perform sts:AssumeRoleWithWebIdentity',
    type: 'Sender',
  });
  const denied = await runCliAsync(['auth', '--direct'], { CREDPORT_CONFIG: stack.configFile });
  t.equal(denied.status, 1);
  t.match(denied.stderr, /^credport: AccessDenied: Not authorized/);
  const broken = await runCliAsync(['auth', '--direct', '--profile', 'broken'], { CREDPORT_CONFIG: stack.configFile });
  t.equal(broken.status, 3, 'the broken profile itself: a config-class error');
  t.match(broken.stderr, /\/nonexistent\/device\.key/);
});

t.test('serve refuses an insecure key file with exit 3', async (t) => {
  const stack = await startStack({ startDaemon: false });
  t.teardown(() => stack.close());
  if (stack.config.key.backend !== 'file') throw new Error('stack uses a file key');
  chmodSync(stack.config.key.path, 0o640);
  const r = await runCliAsync(['serve'], { CREDPORT_CONFIG: stack.configFile });
  t.equal(r.status, 3);
  t.match(r.stderr, /key file .* is readable by others \(mode 0640\); run: chmod 600/);
});
