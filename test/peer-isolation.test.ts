/**
 * Only its owner gets the credentials: a real second local user (useradd) tries
 * every path to them against a real daemon, and gets nothing; the daemon's own
 * user, a uid in allow_uids and a monitor uid get exactly what they may.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { parse, stringify } from 'smol-toml';
import t from 'tap';
import { loadConfig } from '../daemon/config/load.js';
import { PeerIdentifier } from '../daemon/peer/peer-identifier.js';
import { findInTable, rationedTableLookup, tableAddress, tableLookup } from '../daemon/peer/tcp-table.js';
import type { HandoutEvent } from '../daemon/audit/record.js';
import { createUser, curlAs, rootForUsers, runAs, type LocalUser } from './helpers/second-user.js';
import { startStack, type Stack } from './helpers/stack.js';
import { needs } from './helpers/tools.js';

const IMDS_ROLE = 'role-default';
const handouts: HandoutEvent[] = [];
let stack: Stack;
let user: LocalUser | undefined;

t.before(async () => {
  stack = await startStack({ audit: { enabled: true, record: (e) => void handouts.push(e) } });
  // The first fetch done, so that the STS call count only moves when someone asks.
  await stack.daemon!.scheduler.get('default')?.get();
  if (rootForUsers.present) user = createUser();
});
t.teardown(async () => {
  await stack?.close();
  user?.remove();
});

const base = () => `http://127.0.0.1:${stack.daemon!.port}`;
const imdsToken = async () =>
  (await fetch(`${base()}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();

t.test('the /proc/net/tcp reader finds a real connection with its owner and inode', async (t) => {
  t.equal(tableAddress('127.0.0.1', 8080), process.arch === 's390x' ? '7F000001:1F90' : '0100007F:1F90', "IPv4 in the kernel's notation");
  t.equal(tableAddress('::1', 80).split(':')[0]?.length, 32, 'IPv6: 32 hex digits');
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  // The client is another process, as every real client is; it holds the connection until killed.
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const child = spawn(process.execPath, ['-e', `require('net').connect(${port}, '127.0.0.1'); setInterval(() => {}, 1000)`], {
    stdio: 'ignore',
  });
  t.teardown(() => child.kill('SIGKILL'));
  const serverSide = await accepted;
  const owner = tableLookup({
    family: 4,
    localAddress: '127.0.0.1',
    localPort: serverSide.remotePort!,
    remoteAddress: '127.0.0.1',
    remotePort: port,
  });
  t.ok(owner, "the client's socket is found");
  t.equal(owner?.uid, process.getuid!(), 'owned by this user');
  t.equal(owner?.state, 1, 'ESTABLISHED');
  t.ok((owner?.inode ?? 0) > 0, 'with an inode');
  const rationed = rationedTableLookup();
  t.same(
    await rationed({
      family: 4,
      localAddress: '127.0.0.1',
      localPort: serverSide.remotePort!,
      remoteAddress: '127.0.0.1',
      remotePort: port,
    }),
    owner,
    'the rationed reader gives the same answer',
  );
  const id = new PeerIdentifier({ lookup: tableLookup });
  const r = id.identify(serverSide);
  t.same(r instanceof Promise ? await r : r, { ok: true, uid: process.getuid!(), owner }, 'the server side identifies its peer once');
  t.equal(id.identify(serverSide), id.known(serverSide), 'the answer is kept with the connection');
  const proc = await id.process(serverSide);
  t.equal(proc?.pid, child.pid, 'the process holding the client socket is the client');
  t.equal(proc?.exe, process.execPath, 'its executable');
  t.notOk(
    findInTable('  0: 0100007F:0050 0100007F:0051 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0\n', {
      family: 4,
      localAddress: '127.0.0.1',
      localPort: 81,
      remoteAddress: '127.0.0.1',
      remotePort: 80,
    }),
    'a tuple not in the table is not found',
  );
  serverSide.destroy();
  server.close();
});

t.test('a second local user gets nothing, by any path', needs(rootForUsers), async (t) => {
  const u = user!;
  const port = stack.daemon!.port;
  const host = `127.0.0.1:${port}`;
  const token = stack.token();
  const before = handouts.length;
  const stsBefore = stack.emulator.stats.stsCalls;

  const put = await curlAs(u, ['-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60', `http://${host}/latest/api/token`]);
  t.equal(put.status, 403, 'IMDS token PUT: 403');
  t.equal(JSON.parse(put.body).Code, 'ForbiddenUser', 'IMDS token PUT: ForbiddenUser');

  // A token minted by the owner does not help either.
  const ownerImds = await imdsToken();
  for (const path of [
    '/latest/meta-data/iam/security-credentials/',
    `/latest/meta-data/iam/security-credentials/${IMDS_ROLE}`,
    '/latest/meta-data/iam/info',
  ]) {
    const r = await curlAs(u, ['-H', `X-aws-ec2-metadata-token: ${ownerImds}`, `http://${host}${path}`]);
    t.equal(r.status, 403, `IMDS ${path} with the owner's token: 403`);
    t.notMatch(r.body, /ASIA|SecretAccessKey|role-default/, `IMDS ${path}: nothing leaks`);
  }
  // ECS refuses even the correct bearer token.
  for (const path of ['/v1/credentials', '/v1/credentials/default']) {
    const r = await curlAs(u, ['-H', `Authorization: ${token}`, `http://${host}${path}`]);
    t.equal(r.status, 403, `ECS ${path} with the correct token: 403`);
    t.notMatch(r.body, /ASIA|SecretAccessKey/, `ECS ${path}: no credentials`);
  }
  // HEAD routes are added by fastify itself, and a doubled slash is collapsed by the router: neither
  // may reach a credential route without the peer check.
  for (const [method, path] of [
    ['HEAD', '/v1/credentials'],
    ['GET', '//v1/credentials'],
    ['HEAD', '//latest/api/token'],
  ]) {
    const r = await curlAs(u, [
      '-X',
      method!,
      ...(method === 'HEAD' ? ['-I'] : []),
      '-H',
      `Authorization: ${token}`,
      `http://${host}${path}`,
    ]);
    t.equal(r.status, 403, `${method} ${path}: 403`);
  }
  const metrics = await curlAs(u, [`http://${host}/metrics`]);
  t.equal(metrics.status, 403, '/metrics: 403 (it names profiles and roles)');
  const health = await curlAs(u, [`http://${host}/health`]);
  t.equal(health.status, 200, '/health: the overall status');
  t.same(Object.keys(JSON.parse(health.body)).sort(), ['detail', 'status', 'version'], '/health: no profile detail');
  t.notMatch(health.body, /role-default|arn:aws/, '/health: no role ARN');
  t.equal(handouts.length, before, 'no handout was recorded for the other user');
  t.equal(stack.emulator.stats.stsCalls, stsBefore, 'no refresh was started on their behalf');

  // The owner still gets them, and the refusals are logged and counted.
  const own = await fetch(`${base()}/v1/credentials`, { headers: { authorization: token } });
  t.equal(own.status, 200, "the daemon's own user is served");
  const m = await (await fetch(`${base()}/metrics`)).text();
  t.match(m, /credport_peer_refusals_total\{reason="uid"\} ([6-9]|\d\d)/, 'refusals counted by reason');
  t.ok(
    stack.logs.some((l) => l.includes('peer not allowed') && l.includes(`"peerUid":${u.uid}`)),
    'a warning names the refused uid',
  );
});

t.test('allow_uids admits a listed user by name; monitor_uids sees /metrics but gets no credentials', needs(rootForUsers), async (t) => {
  const u = user!;
  const host = `127.0.0.1:${stack.daemon!.port}`;
  const text = readFileSync(stack.configFile, 'utf8');
  const reloadWith = (extra: Record<string, unknown>) => {
    const doc = parse(text) as { daemon: Record<string, unknown> };
    writeFileSync(stack.configFile, stringify({ ...doc, daemon: { ...doc.daemon, ...extra } }));
    stack.daemon!.reload(loadConfig(stack.configFile, process.env));
  };
  t.teardown(() => {
    writeFileSync(stack.configFile, text);
    stack.daemon!.reload(loadConfig(stack.configFile, process.env));
  });

  reloadWith({ monitor_uids: [u.name] });
  t.equal((await curlAs(u, [`http://${host}/metrics`])).status, 200, 'monitor uid: /metrics');
  const health = await curlAs(u, [`http://${host}/health`]);
  t.match(health.body, /role-default/, 'monitor uid: the full /health');
  t.equal(
    (await curlAs(u, ['-H', `Authorization: ${stack.token()}`, `http://${host}/v1/credentials`])).status,
    403,
    'monitor uid: no credentials',
  );

  reloadWith({ allow_uids: [u.name] });
  const before = handouts.length;
  const ecs = await curlAs(u, ['-H', `Authorization: ${stack.token()}`, `http://${host}/v1/credentials`]);
  t.equal(ecs.status, 200, 'allowed uid: ECS');
  t.match(JSON.parse(ecs.body).AccessKeyId, /^ASIA/, 'allowed uid: credentials');
  const tok = await curlAs(u, ['-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60', `http://${host}/latest/api/token`]);
  t.equal(tok.status, 200, 'allowed uid: IMDS token');
  const imds = await curlAs(u, [
    '-H',
    `X-aws-ec2-metadata-token: ${tok.body}`,
    `http://${host}/latest/meta-data/iam/security-credentials/${IMDS_ROLE}`,
  ]);
  t.equal(imds.status, 200, 'allowed uid: IMDS credentials');
  const mine = handouts.slice(before);
  t.equal(mine.length, 2, 'two handouts recorded');
  for (const h of mine) {
    t.equal(h.uid, u.uid, `${h.endpoint}: the peer's uid`);
    t.equal(h.exe, '/usr/bin/curl', `${h.endpoint}: the executable`);
    t.equal(h.argv0, 'curl', `${h.endpoint}: argv[0]`);
    t.ok(h.pid !== null && h.pid > 0, `${h.endpoint}: a pid`);
  }
});

t.test('allow_executables limits a profile to named programs', async (t) => {
  const text = readFileSync(stack.configFile, 'utf8');
  const doc = parse(text) as { profiles: Record<string, Record<string, unknown>> };
  writeFileSync(
    stack.configFile,
    stringify({ ...doc, profiles: { ...doc.profiles, default: { ...doc.profiles.default, allow_executables: ['/usr/bin/curl'] } } }),
  );
  stack.daemon!.reload(loadConfig(stack.configFile, process.env));
  t.teardown(() => {
    writeFileSync(stack.configFile, text);
    stack.daemon!.reload(loadConfig(stack.configFile, process.env));
  });
  const node = await fetch(`${base()}/v1/credentials`, { headers: { authorization: stack.token() } });
  t.equal(node.status, 403, 'node is not curl: refused');
  t.equal(((await node.json()) as { Code: string }).Code, 'ForbiddenExecutable');
  const curl = await runAs({ name: 'root', uid: 0, gid: 0, remove: () => undefined }, 'curl', [
    '-sS',
    '-H',
    `Authorization: ${stack.token()}`,
    `${base()}/v1/credentials`,
  ]);
  t.match(curl.stdout, /"AccessKeyId":"ASIA/, 'curl is served');
});

t.test('proxy markers on the IMDS token PUT are refused alike', async (t) => {
  for (const [name, value] of [
    ['X-Forwarded-For', '10.0.0.1'],
    ['Forwarded', 'for=10.0.0.1'],
    ['Via', '1.1 proxy'],
    ['X-Real-IP', '10.0.0.1'],
    ['X-Forwarded-Host', 'evil'],
  ] as [string, string][]) {
    const r = await fetch(`${base()}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60', [name]: value },
    });
    t.equal(r.status, 400, `${name}: 400`);
  }
  t.equal(
    (await fetch(`${base()}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).status,
    200,
    'without them: a token',
  );
});

t.test('bursts, early disconnects and killed clients: no crash, no leaked descriptor, nothing to an unidentified peer', async (t) => {
  const port = stack.daemon!.port;
  const fds = () => readdirSync('/proc/self/fd').length;
  const start = fds();
  const before = handouts.length;
  const token = stack.token();
  const request = `GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${token}\r\n\r\n`;
  // 1,000 connections, 50 at a time: half send a request and hang up at once, half connect and close.
  for (let round = 0; round < 20; round++) {
    await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const s = connect(port, '127.0.0.1', () => {
              if (i % 2 === 0) s.end(request);
              s.destroy();
            });
            s.on('error', () => undefined);
            s.on('close', () => resolve());
          }),
      ),
    );
  }
  // A client killed mid-request.
  const killed = await runAs({ name: 'root', uid: 0, gid: 0, remove: () => undefined }, process.execPath, [
    '-e',
    `const s=require('net').connect(${port},'127.0.0.1',()=>{s.write('GET /v1/credentials HTTP/1.1\\r\\nHost: 127.0.0.1:${port}\\r\\n');process.kill(process.pid,'SIGKILL')})`,
  ]);
  t.equal(killed.status, null, 'the client was killed');
  // Let the server notice the closed sockets (bounded wait).
  let now = fds();
  for (let i = 0; i < 50 && now > start + 5; i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = fds();
  }
  t.ok(now <= start + 5, `descriptors back to where they were (${start} → ${now})`);
  const h = await fetch(`${base()}/health`);
  t.equal(h.status, 200, 'the daemon still serves');
  for (const e of handouts.slice(before))
    t.equal(e.uid, process.getuid!(), 'every handout in the burst went to an identified peer of this user');
});
