/**
 * The audit log names who got what: real clients (curl, the AWS CLI, boto3,
 * a node client) fetch credentials through the daemon, and the audit file
 * written by the daemon names each one's pid and executable, on the endpoint
 * it used, with the access key id it received and nothing secret.
 */
import { execFile } from 'node:child_process';
import { Agent, get as httpGet } from 'node:http';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EmptyHome, cleanEnv, containerUri, imdsEndpoint } from './helpers/clients.js';
import { freePort, runCliAsync } from './helpers/cli.js';
import { startStack, type Stack } from './helpers/stack.js';
import { debianAws, debianBoto3, needs } from './helpers/tools.js';

let stack: Stack;
const home = new EmptyHome();
t.before(async () => {
  // A fixed port: `credport auth` finds the daemon through the config's listen address.
  stack = await startStack({ daemon: { listen: `127.0.0.1:${await freePort()}` } });
});
t.teardown(async () => {
  await stack?.close();
  home.remove();
});

interface Line {
  time: string;
  profile: string;
  endpoint: string;
  accessKeyId: string;
  expiration: string;
  uid: number;
  pid: number | null;
  exe: string | null;
  argv0: string | null;
}

const auditFile = () => join(stack.dir, 'audit.log');
function lines(): Line[] {
  try {
    return readFileSync(auditFile(), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
  } catch {
    return [];
  }
}

/** Runs a client and returns its pid with its output (the daemon is in this process: never block). */
function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ pid: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, cwd: home.dir, timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ pid: child.pid ?? -1, code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

/** The line for this pid, once the daemon's asynchronous writer has put it on disk (bounded wait). */
async function lineFor(pid: number): Promise<Line | undefined> {
  for (let i = 0; i < 100; i++) {
    const l = lines().find((x) => x.pid === pid);
    if (l) return l;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

const ecsEnv = () =>
  cleanEnv(home, { AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack), AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token() });

t.test('curl on the container endpoint', async (t) => {
  const r = await run('curl', ['-sS', '-H', `Authorization: ${stack.token()}`, containerUri(stack)], {});
  const got = JSON.parse(r.stdout) as { AccessKeyId: string };
  const l = await lineFor(r.pid);
  t.ok(l, "a line names curl's pid");
  t.equal(l?.exe, realpathSync('/usr/bin/curl'), 'its executable');
  t.equal(l?.argv0, 'curl', 'its argv[0]');
  t.equal(l?.endpoint, 'ecs');
  t.equal(l?.accessKeyId, got.AccessKeyId, 'the access key id it received');
  t.equal(l?.uid, process.getuid!(), 'its uid');
});

t.test('a node client (fromHttp-style fetch) on the container endpoint', async (t) => {
  const r = await run(
    process.execPath,
    ['-e', `fetch(process.env.U,{headers:{authorization:process.env.T}}).then(r=>r.json()).then(j=>console.log(j.AccessKeyId))`],
    { U: containerUri(stack), T: stack.token() },
  );
  const l = await lineFor(r.pid);
  t.equal(l?.exe, realpathSync(process.execPath), 'node');
  t.equal(l?.accessKeyId, r.stdout.trim(), 'the access key id it printed');
});

t.test('the AWS CLI on both endpoints', needs(debianAws), async (t) => {
  const ecs = await run('/usr/bin/aws', ['configure', 'export-credentials', '--format', 'process'], ecsEnv());
  t.equal(ecs.code, 0, `aws ran: ${ecs.stderr.slice(-300)}`);
  const l = await lineFor(ecs.pid);
  // Debian's aws is a Python program: the kernel names the interpreter, argv[0] the script's interpreter path.
  t.match(l?.exe ?? '', /\/python3(\.\d+)?$/, 'the interpreter running the AWS CLI');
  t.equal(l?.endpoint, 'ecs');
  const imds = await run(
    '/usr/bin/aws',
    ['configure', 'export-credentials', '--format', 'process'],
    cleanEnv(home, { AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }),
  );
  t.equal(imds.code, 0, `aws over IMDS ran: ${imds.stderr.slice(-300)}`);
  const m = await lineFor(imds.pid);
  t.equal(m?.endpoint, 'imds', 'the IMDS handout is named as such');
  t.equal(m?.pid, imds.pid);
});

t.test('boto3 on the container endpoint', needs(debianBoto3), async (t) => {
  const r = await run(
    '/usr/bin/python3',
    ['-I', '-c', 'import boto3; print(boto3.Session().get_credentials().get_frozen_credentials().access_key)'],
    ecsEnv(),
  );
  t.equal(r.code, 0, `boto3 ran: ${r.stderr.slice(-300)}`);
  const l = await lineFor(r.pid);
  t.match(l?.exe ?? '', /\/python3(\.\d+)?$/, 'python3');
  t.equal(l?.accessKeyId, r.stdout.trim(), 'the access key id boto3 got');
});

t.test('credport auth through the daemon is named as such', async (t) => {
  const r = await runCliAsync(['auth', '--config', stack.configFile]);
  t.equal(r.status, 0, r.stderr);
  for (let i = 0; i < 100 && !lines().some((l) => l.endpoint === 'auth'); i++) await new Promise((res) => setTimeout(res, 50));
  const l = lines().find((x) => x.endpoint === 'auth');
  t.ok(l, 'an auth line');
  t.equal(l?.accessKeyId, (JSON.parse(r.stdout) as { AccessKeyId: string }).AccessKeyId);
});

t.test('the audit file is private and holds no secret', async (t) => {
  t.equal(statSync(auditFile()).mode & 0o777, 0o600, 'mode 0600');
  const text = readFileSync(auditFile(), 'utf8');
  t.notMatch(text, new RegExp(stack.token().replace(/[-]/g, '\\-')), 'not the ECS token');
  t.notMatch(text, /SecretAccessKey|sessionToken|"Token"|eyJ/, 'no secret key, session token or JWT');
  const r = await fetch(containerUri(stack), { headers: { authorization: stack.token() } });
  const body = (await r.json()) as { SecretAccessKey: string; Token: string };
  t.notOk(text.includes(body.SecretAccessKey), 'not the secret access key');
  t.notOk(text.includes(body.Token), 'not the session token');
  const cli = await runCliAsync(['audit', '--config', stack.configFile, '--json']);
  t.equal(cli.status, 0, 'credport audit reads it');
  const parsed = cli.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
  t.ok(
    parsed.some((p) => p.exe === realpathSync('/usr/bin/curl')),
    'credport audit --json shows the curl line',
  );
});

t.test('an SDK polling over one kept-alive connection costs one line and one summary', async (t) => {
  const own = await startStack();
  let closed = false;
  t.teardown(async () => {
    if (!closed) await own.close();
  });
  const port = own.daemon!.port;
  const token = own.token();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<number>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port, path: '/v1/credentials', agent, headers: { authorization: token } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
  const N = 200;
  const statuses: number[] = [];
  for (let i = 0; i < N; i++) statuses.push(await get());
  t.same([...new Set(statuses)], [200], `${N} requests served`);
  agent.destroy();
  await own.daemon!.close(); // closes the audit log, writing what is pending
  const text = readFileSync(join(own.dir, 'audit.log'), 'utf8');
  closed = true;
  await own.close();
  const entries = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line & { repeats?: number });
  t.equal(entries.length, 2, 'the first handout and one summary');
  t.equal(entries[0]?.repeats, undefined, 'the first line is the handout');
  t.equal(entries[1]?.repeats, N - 1, `the summary counts the ${N - 1} repeats`);
  t.equal(entries[1]?.pid, entries[0]?.pid, 'both name the same process');
});
