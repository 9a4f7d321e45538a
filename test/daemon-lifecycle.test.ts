/**
 * The daemon as a real process through its life: one instance per lock, a
 * port held by another process, reload (good and bad config), SIGTERM with
 * requests in flight, SIGKILL in the middle of a refresh, metrics, log files
 * and doctor.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { freePort, runCliAsync, spawnCli, waitFor, type Spawned } from './helpers/cli.js';
import { roleArnFor, startStack, type Stack } from './helpers/stack.js';

async function serving(port: number): Promise<void> {
  await waitFor(async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/health`)).status === 200 ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

async function getCreds(port: number, token: string, profile = ''): Promise<{ status: number; body: Record<string, string> }> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/credentials${profile ? `/${profile}` : ''}`, { headers: { authorization: token } });
  return { status: r.status, body: (await r.json()) as Record<string, string> };
}

async function withDaemon(
  t: Test,
  opts: Parameters<typeof startStack>[0] = {},
): Promise<{ stack: Stack; port: number; env: Record<string, string>; d: Spawned }> {
  const port = await freePort();
  const stack = await startStack({
    ...opts,
    startDaemon: false,
    daemon: { listen: `127.0.0.1:${port}`, log_level: 'debug', ...opts.daemon },
  });
  t.teardown(() => stack.close());
  const env = { CREDPORT_CONFIG: stack.configFile };
  const d = spawnCli(['serve'], env);
  t.teardown(() => d.child.kill('SIGKILL'));
  return { stack, port, env, d };
}

t.test('one instance per lock file; another process on the port is named', async (t) => {
  const { stack, port, env, d } = await withDaemon(t);
  await serving(port);
  const second = await runCliAsync(['serve'], env);
  t.equal(second.status, 1);
  t.match(
    second.stderr,
    new RegExp(`already running \\(pid ${d.child.pid}, lock ${stack.config.daemon.lockFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`),
  );
  // Same port, different lock: the port error names the process holding it.
  const other = join(stack.dir, 'other.toml');
  writeFileSync(
    other,
    readFileSync(stack.configFile, 'utf8').replace(/lock_file = "[^"]+"/, `lock_file = "${join(stack.dir, 'other.pid')}"`),
  );
  const clash = await runCliAsync(['serve'], { CREDPORT_CONFIG: other });
  t.equal(clash.status, 1);
  t.match(clash.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use by pid ${d.child.pid} \\(`));
  t.notOk(existsSync(join(stack.dir, 'other.pid')), 'the failed daemon released its lock');
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0);
  t.notOk(existsSync(stack.config.daemon.lockFile), 'lock removed on a clean stop');
});

t.test('reload: a new profile is served; a broken config is rejected and the old one keeps serving', async (t) => {
  const { stack, port, env } = await withDaemon(t);
  await serving(port);
  const token = stack.token();
  const first = await getCreds(port, token);
  t.equal(first.status, 200);
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
  writeFileSync(
    stack.configFile,
    `${good}\n[profiles.extra]\ntype = "aws-oidc"\nrole_arn = "${roleArnFor('role-extra')}"\nsts_endpoint = "${stack.emulator.stsEndpoint}"\n`,
  );
  const r = await runCliAsync(['reload'], env);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^reloaded /);
  const extra = await waitFor(async () => {
    const c = await getCreds(port, token, 'extra');
    return c.status === 200 ? c : undefined;
  });
  t.equal(stack.emulator.issued(extra.body.AccessKeyId ?? '')?.roleArn, roleArnFor('role-extra'), 'the new profile is served');
  t.equal(
    (await getCreds(port, token)).body.AccessKeyId,
    first.body.AccessKeyId,
    'an unchanged profile keeps its credentials (no needless refresh)',
  );

  writeFileSync(stack.configFile, `${good}\n[daemon\nbroken`);
  const bad = await runCliAsync(['reload'], env);
  t.equal(bad.status, 3, 'reload validates first and says why');
  t.match(bad.stderr, /line \d+, column \d+/);
  // Signalled directly (as systemd's ExecReload does), the daemon rejects it and keeps serving.
  const pid = (JSON.parse(readFileSync(stack.config.daemon.lockFile, 'utf8')) as { pid: number }).pid;
  process.kill(pid, 'SIGHUP');
  const health = await waitFor(async () => {
    const h = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { config: { lastError: { message: string } | null } };
    return h.config.lastError ? h : undefined;
  });
  t.match(health.config.lastError?.message, /line \d+, column \d+/);
  t.equal((await getCreds(port, token)).status, 200, 'still serving');
  t.equal((await getCreds(port, token, 'extra')).status, 200, 'with the last good config');
  // status needs a readable config to find the daemon; with the file fixed, it still reports the rejection.
  writeFileSync(
    stack.configFile,
    `${good}\n[profiles.extra]\ntype = "aws-oidc"\nrole_arn = "${roleArnFor('role-extra')}"\nsts_endpoint = "${stack.emulator.stsEndpoint}"\n`,
  );
  const status = await runCliAsync(['status'], env);
  t.match(status.stdout, /last reload REJECTED .* \(running config kept\)/);
});

t.test('SIGTERM with 100 requests in flight loses none', async (t) => {
  // The upstream answers within the 1 s a cold request waits (longer, and every request is rightly
  // answered 503 before the SIGTERM), but after the SIGTERM below.
  const { stack, port, d } = await withDaemon(t, { beforeStart: (e) => e.setFault({ kind: 'delay', ms: 800 }) });
  // The daemon identifies each connection's peer when its first request reaches the routes: its
  // counter says when all 100 are in, whatever the machine's load. Polled over one kept-alive
  // connection of its own (which also waits for the daemon to listen), so that the 100 requests
  // below each open a new connection and the polling adds one lookup only.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const identified = () =>
    new Promise<number>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(Number(/credport_peer_lookups_total\{result="identified"\} (\d+)/.exec(body)?.[1] ?? 0)));
      }).on('error', reject);
    });
  await waitFor(() =>
    identified().then(
      () => true,
      () => undefined,
    ),
  );
  const token = stack.token();
  const before = await identified();
  const inflight = Array.from({ length: 100 }, () => getCreds(port, token));
  await waitFor(() => (stack.emulator.stats.stsCalls >= 1 ? true : undefined));
  await waitFor(async () => ((await identified()) >= before + 100 ? true : undefined));
  d.child.kill('SIGTERM');
  const results = await Promise.all(inflight);
  t.equal(results.filter((r) => r.status === 200).length, 100, 'all 100 answered with credentials');
  t.equal(new Set(results.map((r) => r.body.AccessKeyId)).size, 1, 'from one upstream call');
  t.equal(await d.exited, 0, 'then exit 0');
});

t.test('SIGKILL during a refresh: the next start takes over the stale lock and serves', async (t) => {
  const { stack, port, env, d } = await withDaemon(t, { beforeStart: (e) => e.setFault({ kind: 'delay', ms: 5000 }) });
  await waitFor(() => (stack.emulator.stats.stsCalls >= 1 ? true : undefined));
  d.child.kill('SIGKILL');
  await d.exited;
  t.ok(existsSync(stack.config.daemon.lockFile), 'a killed daemon leaves its lock behind');
  stack.emulator.setFault(null);
  const again = spawnCli(['serve'], env);
  t.teardown(() => again.child.kill('SIGKILL'));
  await serving(port);
  const c = await getCreds(port, stack.token());
  t.equal(c.status, 200, 'first request served');
  t.ok(stack.emulator.issued(c.body.AccessKeyId ?? ''));
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
});

t.test('metrics, rotating log files, credport logs and doctor', async (t) => {
  const { stack, port, env, d } = await withDaemon(t, {
    daemon: { log_file: 'logs/credport.log', log_max_size: '1k', log_files: 2, log_level: 'trace' },
  });
  await serving(port);
  const token = stack.token();
  for (let i = 0; i < 30; i++) await getCreds(port, token);
  await getCreds(port, 'wrong-token');
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^credport_http_requests_total\{endpoint="ecs",status="200"\} 30$/m);
  t.match(metrics, /^credport_http_requests_total\{endpoint="ecs",status="401"\} 1$/m);
  t.match(metrics, /^credport_credential_refreshes_total\{profile="default",result="success",code=""\} 1$/m);
  t.match(metrics, /^credport_credential_seconds_to_expiry\{profile="default"\} \d+$/m);
  t.match(metrics, /^credport_signing_duration_seconds_count\{backend="file"\} 1$/m);
  t.notMatch(metrics, new RegExp(token), 'no secret in metrics');

  const doctor = await runCliAsync(['doctor'], { ...env, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE12' });
  t.equal(doctor.status, 0, `${doctor.stdout}\ndaemon stderr: ${d.stderr()}`);
  for (const name of ['config', 'key', 'token file', 'daemon', 'clock'])
    t.match(doctor.stdout, new RegExp(`^\\[ok  \\] ${name}`, 'm'), `${name} ok`);
  t.match(doctor.stdout, /^\[warn\] shell\s+AWS_ACCESS_KEY_ID is set/m, 'warns about a shell variable that would shadow credport');
  t.match(doctor.stdout, /fix: unset AWS_ACCESS_KEY_ID/);

  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0);
  const logDir = join(stack.dir, 'logs');
  const files = readdirSync(logDir).filter((f) => /^credport\.\d+\.log$/.test(f));
  t.ok(files.length >= 2, `rotated by size (${files.join(', ')})`);
  t.ok(files.length <= 3, 'retention: at most log_files old files plus the current one');
  const logs = await runCliAsync(['logs', '-n', '5'], env);
  t.equal(logs.status, 0, logs.stderr);
  t.equal(
    logs.stdout
      .trim()
      .split('\n')
      .filter((l) => /^\[/.test(l)).length,
    5,
    'five pretty lines',
  );
  t.match(logs.stdout, /credport daemon stopped/);
  const json = await runCliAsync(['logs', '-n', '3', '--json'], env);
  for (const line of json.stdout.trim().split('\n')) t.doesNotThrow(() => JSON.parse(line));
  const all = readdirSync(logDir)
    .map((f) => readFileSync(join(logDir, f), 'utf8'))
    .join('\n');
  t.notOk(all.includes(token), 'no token in the log files');

  const down = await runCliAsync(['doctor'], env);
  t.equal(down.status, 1, 'daemon down: doctor fails');
  t.match(down.stdout, /^\[FAIL\] daemon\s+not listening/m);
  t.match(down.stdout, /fix: credport serve/);
});
