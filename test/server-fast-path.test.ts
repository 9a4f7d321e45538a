// The hot path (server/fast-path.ts) on kept-alive connections, where it answers: the second and later
// requests on a connection whose peer is already identified. server-guards.test.ts sends each request on a
// new connection, which fastify answers; here every refusal is sent on a connection that has just been
// served credentials, so the per-connection caches (the peer's loopback verdict, the accepted ECS token,
// the accepted IMDS session token) are warm, and must not let anything through that a new connection
// would be refused. Also: the cached response follows the credentials when they are refreshed.

import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, Socket } from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import type { AwsCredentials } from '../daemon/clouds/aws/credentials.js';
import { ImdsTokenStore } from '../daemon/clouds/aws/endpoints/imds-tokens.js';
import { startDaemon } from '../daemon/daemon.js';
import { createLogger } from '../daemon/logging/logger.js';
import { rotateTokenFile } from '../daemon/server/token.js';
import { startStack } from './helpers/stack.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  /** The client's port: the same number means the same connection. */
  localPort: number;
}

/** One kept-alive connection (an agent with a single socket), with exactly the headers given. */
class Connection {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1 });
  constructor(readonly port: number) {}

  send(path: string, o: { method?: string; headers?: Record<string, string | string[]> } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          path,
          method: o.method ?? 'GET',
          headers: o.headers ?? {},
          agent: this.#agent,
          setHost: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          const localPort = res.socket.localPort ?? 0;
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              rawHeaders: res.rawHeaders,
              body: Buffer.concat(chunks).toString('utf8'),
              localPort,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

// The stack's own daemon logs at trace, and the fast path stands aside whenever debug logging is on: this
// daemon logs at info, as a production one does, into memory.
const stack = await startStack({ startDaemon: false });
t.teardown(() => stack.close());
const logs: string[] = [];
const daemon = await startDaemon({
  config: stack.config,
  signer: stack.signer,
  logger: createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString('utf8'));
        cb();
      },
    }),
  }),
  tuning: { maxAttempts: 1 },
});
t.teardown(() => daemon.close());
const port = daemon.port;
const goodHost = `127.0.0.1:${port}`;
const ROLE = 'role-default';
const IMDS_PATH = `/latest/meta-data/iam/security-credentials/${ROLE}`;

async function imdsToken(ttl = '21600'): Promise<string> {
  const c = new Connection(port);
  const r = await c.send('/latest/api/token', { method: 'PUT', headers: { host: goodHost, 'x-aws-ec2-metadata-token-ttl-seconds': ttl } });
  c.close();
  if (r.status !== 200) throw new Error(`token PUT answered ${r.status}`);
  return r.body;
}

// The fast path writes its three headers first, in this order; fastify's reply writes them in another.
// That is how a test can tell that the hot path, and not fastify, answered a request.
const fastHeaderNames = (r: Reply): string[] =>
  r.rawHeaders
    .filter((_, i) => i % 2 === 0)
    .slice(0, 3)
    .map((n) => n.toLowerCase());
const FAST_ORDER = ['content-type', 'content-length', 'cache-control'];

/**
 * A connection that has been served credentials twice, the second time by the fast path (checked):
 * every per-connection cache is warm when the returned connection is used next.
 */
async function warm(tt: Tap, path: string, headers: Record<string, string>): Promise<{ c: Connection; localPort: number; body: string }> {
  const c = new Connection(port);
  tt.teardown(() => c.close());
  const first = await c.send(path, { headers: { host: goodHost, ...headers } });
  tt.equal(first.status, 200, `${path}: first request served`);
  // The first request on a connection is fastify's (the peer is not known yet): the header order differs.
  tt.notSame(fastHeaderNames(first), FAST_ORDER, `${path}: the first answer came from the routes`);
  const second = await c.send(path, { headers: { host: goodHost, ...headers } });
  tt.equal(second.status, 200, `${path}: second request served`);
  tt.equal(second.localPort, first.localPort, `${path}: on the same connection`);
  tt.same(fastHeaderNames(second), FAST_ORDER, `${path}: the second answer came from the fast path`);
  tt.equal(second.body, first.body, `${path}: the same body as the route's`);
  tt.equal(Number(second.headers['content-length']), Buffer.byteLength(second.body), `${path}: content-length is the body's`);
  return { c, localPort: first.localPort, body: second.body };
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

function assertNoCredentials(tt: Tap, r: Reply, what: string): void {
  tt.notMatch(r.body, /ASIA[A-Z0-9]{16}|SecretAccessKey|"Token"/, `${what}: no credential fields`);
}

t.test('a warm ECS connection still refuses what a new one refuses', async (tt) => {
  const token = stack.token();
  const cases: { what: string; method?: string; headers: Record<string, string | string[]>; status: number; code?: string }[] = [
    { what: 'a foreign Host', headers: { host: `attacker.example:${port}`, authorization: token }, status: 403, code: 'ForbiddenHost' },
    { what: 'Host without the port', headers: { host: '127.0.0.1', authorization: token }, status: 403, code: 'ForbiddenHost' },
    { what: 'an Origin', headers: { host: goodHost, authorization: token, origin: 'http://attacker.example' }, status: 403 },
    { what: 'an upper-case ORIGIN', headers: { host: goodHost, authorization: token, ORIGIN: 'null' }, status: 403 },
    { what: 'Sec-Fetch-Site', headers: { host: goodHost, authorization: token, 'Sec-Fetch-Site': 'cross-site' }, status: 403 },
    { what: 'no token', headers: { host: goodHost }, status: 401, code: 'MissingToken' },
    { what: 'an empty token', headers: { host: goodHost, authorization: '' }, status: 401, code: 'MissingToken' },
    { what: 'a wrong token', headers: { host: goodHost, authorization: `${token.slice(0, -1)}x` }, status: 401, code: 'InvalidToken' },
    { what: 'the token with a suffix', headers: { host: goodHost, authorization: `${token}x` }, status: 401, code: 'InvalidToken' },
    // node keeps the first of two Authorization headers: a wrong first one is refused whatever follows.
    { what: 'a wrong token, then the right one', headers: { host: goodHost, authorization: ['wrong', token] }, status: 401 },
    { what: 'a POST', method: 'POST', headers: { host: goodHost, authorization: token }, status: 404 },
    { what: 'a DELETE', method: 'DELETE', headers: { host: goodHost, authorization: token }, status: 404 },
    { what: 'another profile', headers: { host: goodHost, authorization: token }, status: 404, code: 'ProfileNotFound' },
  ];
  for (const k of cases) {
    const { c, localPort } = await warm(tt, '/v1/credentials', { authorization: token });
    const path = k.what === 'another profile' ? '/v1/credentials/nosuchprofile' : '/v1/credentials';
    const r = await c.send(path, { method: k.method ?? 'GET', headers: k.headers });
    tt.equal(r.localPort, localPort, `${k.what}: sent on the warm connection`);
    tt.equal(r.status, k.status, `${k.what}: ${k.status}`);
    if (k.code) tt.equal((JSON.parse(r.body) as { Code: string }).Code, k.code, `${k.what}: ${k.code}`);
    assertNoCredentials(tt, r, k.what);
  }
});

/** A raw socket, for what node:http will not send (two Host lines): one request, then its whole answer. */
async function rawConnection(): Promise<{ ask(text: string): Promise<{ status: number; head: string; body: string }>; close(): void }> {
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  let buffered = Buffer.alloc(0);
  let waiting: (() => void) | undefined;
  sock.on('data', (c: Buffer) => {
    buffered = Buffer.concat([buffered, c]);
    waiting?.();
  });
  sock.on('close', () => waiting?.());
  const ask = async (text: string) => {
    sock.write(text);
    for (let i = 0; i < 1000; i++) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end !== -1) {
        const head = buffered.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length >= end + 4 + length) {
          const body = buffered.subarray(end + 4, end + 4 + length).toString('utf8');
          buffered = buffered.subarray(end + 4 + length);
          return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body };
        }
      }
      if (sock.destroyed) break;
      await new Promise<void>((r) => {
        waiting = r;
      });
    }
    throw new Error('no complete answer');
  };
  return { ask, close: () => sock.destroy() };
}

t.test('two Host lines are refused on a warm connection', async (tt) => {
  const token = stack.token();
  const raw = await rawConnection();
  tt.teardown(() => raw.close());
  const good = `GET /v1/credentials HTTP/1.1\r\nHost: ${goodHost}\r\nAuthorization: ${token}\r\n\r\n`;
  tt.equal((await raw.ask(good)).status, 200, 'served (routes)');
  const fast = await raw.ask(good);
  tt.equal(fast.status, 200, 'served again');
  tt.match(
    fast.head,
    /^HTTP\/1\.1 200 OK\r\ncontent-type: [^\r]*\r\ncontent-length: \d+\r\ncache-control: no-store\r\n/,
    'by the fast path',
  );
  const r = await raw.ask(`GET /v1/credentials HTTP/1.1\r\nHost: ${goodHost}\r\nHost: ${goodHost}\r\nAuthorization: ${token}\r\n\r\n`);
  tt.equal(r.status, 400, 'two Host lines: 400');
  tt.equal((JSON.parse(r.body) as { Code: string }).Code, 'BadRequest');
  tt.notMatch(r.body, /SecretAccessKey/);
});

t.test('a warm IMDS connection still refuses what a new one refuses', async (tt) => {
  const session = await imdsToken();
  const cases: { what: string; method?: string; path?: string; headers: Record<string, string | string[]>; status: number }[] = [
    { what: 'a foreign Host', headers: { host: `attacker.example:${port}`, 'x-aws-ec2-metadata-token': session }, status: 403 },
    { what: 'Sec-Fetch-Dest', headers: { host: goodHost, 'x-aws-ec2-metadata-token': session, 'sec-fetch-dest': 'empty' }, status: 403 },
    { what: 'no session token', headers: { host: goodHost }, status: 401 },
    { what: 'a wrong session token', headers: { host: goodHost, 'x-aws-ec2-metadata-token': `${session.slice(0, -2)}AA` }, status: 401 },
    { what: 'the session token twice', headers: { host: goodHost, 'x-aws-ec2-metadata-token': [session, session] }, status: 401 },
    {
      what: 'another role',
      path: '/latest/meta-data/iam/security-credentials/other',
      headers: { host: goodHost, 'x-aws-ec2-metadata-token': session },
      status: 404,
    },
    { what: 'a POST', method: 'POST', headers: { host: goodHost, 'x-aws-ec2-metadata-token': session }, status: 404 },
    // The proxy refusal is the token PUT's (as real IMDS); on a warm connection it still holds.
    {
      what: 'a token PUT with X-Forwarded-For',
      method: 'PUT',
      path: '/latest/api/token',
      headers: { host: goodHost, 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.0.0.1' },
      status: 400,
    },
  ];
  for (const k of cases) {
    const { c, localPort } = await warm(tt, IMDS_PATH, { 'x-aws-ec2-metadata-token': session });
    const r = await c.send(k.path ?? IMDS_PATH, { method: k.method ?? 'GET', headers: k.headers });
    tt.equal(r.localPort, localPort, `${k.what}: sent on the warm connection`);
    tt.equal(r.status, k.status, `${k.what}: ${k.status}`);
    assertNoCredentials(tt, r, k.what);
  }
});

t.test('an expired IMDS session token is refused on the connection it was accepted on', async (tt) => {
  const session = await imdsToken('1');
  const { c, localPort } = await warm(tt, IMDS_PATH, { 'x-aws-ec2-metadata-token': session });
  // The token lives one second; wait past it (with margin) on the same kept-alive connection.
  await new Promise((r) => setTimeout(r, 1500));
  const r = await c.send(IMDS_PATH, { headers: { host: goodHost, 'x-aws-ec2-metadata-token': session } });
  tt.equal(r.localPort, localPort, 'the same connection');
  tt.equal(r.status, 401, 'expired: refused');
  assertNoCredentials(tt, r, 'expired token');
});

t.test('a rotated ECS token is refused on a kept-alive connection that used the old one', async (tt) => {
  const old = stack.token();
  const { c, localPort } = await warm(tt, '/v1/credentials', { authorization: old });
  const fresh = rotateTokenFile(stack.config.daemon.tokenFile);
  // The daemon takes the new token up when it is first presented (token-file-watch.ts).
  const other = new Connection(port);
  tt.teardown(() => other.close());
  tt.equal(
    (await other.send('/v1/credentials', { headers: { host: goodHost, authorization: fresh } })).status,
    200,
    'the new token is served',
  );
  const r = await c.send('/v1/credentials', { headers: { host: goodHost, authorization: old } });
  tt.equal(r.localPort, localPort, 'the old token is sent again on its warm connection');
  tt.equal(r.status, 401, 'and refused');
  tt.equal((JSON.parse(r.body) as { Code: string }).Code, 'InvalidToken');
  assertNoCredentials(tt, r, 'old token');
  // The same connection with the new token is served again, by the fast path once accepted.
  const again = await c.send('/v1/credentials', { headers: { host: goodHost, authorization: fresh } });
  tt.equal(again.status, 200, 'the new token on the old connection is served');
});

t.test('the cached responses follow the credentials when they are refreshed', async (tt) => {
  const token = stack.token();
  const ecs = await warm(tt, '/v1/credentials', { authorization: token });
  const session = await imdsToken();
  const imds = await warm(tt, IMDS_PATH, { 'x-aws-ec2-metadata-token': session });
  const before = JSON.parse(ecs.body) as Record<string, string>;
  tt.equal((JSON.parse(imds.body) as Record<string, string>).AccessKeyId, before.AccessKeyId, 'both endpoints serve the same credentials');

  const refreshed = (await daemon.scheduler.get('default')!.refreshNow()) as AwsCredentials;
  tt.not(refreshed.accessKeyId, before.AccessKeyId, 'the refresh brought new credentials');

  const checks: Array<[string, typeof ecs, string, Record<string, string>]> = [
    ['ECS', ecs, '/v1/credentials', { authorization: token }],
    ['IMDS', imds, IMDS_PATH, { 'x-aws-ec2-metadata-token': session }],
  ];
  for (const [name, warmed, path, auth] of checks) {
    const r = await warmed.c.send(path, { headers: { host: goodHost, ...auth } });
    tt.equal(r.localPort, warmed.localPort, `${name}: the same warm connection`);
    tt.same(fastHeaderNames(r), FAST_ORDER, `${name}: answered by the fast path`);
    const body = JSON.parse(r.body) as Record<string, string>;
    tt.equal(body.AccessKeyId, refreshed.accessKeyId, `${name}: the new access key`);
    tt.equal(body.Token, refreshed.sessionToken, `${name}: the new session token`);
    tt.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body), `${name}: content-length of the new body`);
  }
});

t.test('IMDS session tokens: the per-connection shortcut skips only the hash', async (tt) => {
  let now = 1_000_000;
  const store = new ImdsTokenStore(() => now, 2);
  const a = new Socket();
  const b = new Socket();
  const t1 = store.issue(60);
  tt.ok(store.isValidOn(a, t1), 'a live token is accepted');
  tt.ok(store.isValidOn(a, t1), 'and again on the same connection');
  tt.notOk(store.isValidOn(a, `${t1.slice(0, -1)}${t1.endsWith('A') ? 'B' : 'A'}`), 'a near miss is refused on that connection');
  tt.notOk(store.isValidOn(b, 'x'.repeat(56)), 'an unknown token is refused on another');
  tt.notOk(store.isValidOn(a, undefined), 'no token is refused');
  tt.notOk(store.isValidOn(a, 'y'.repeat(300)), 'an over-long token is refused');
  // Two more tokens push t1 out of the store (at most 2): the connection that had it accepted is refused.
  store.issue(60);
  store.issue(60);
  tt.notOk(store.isValid(t1), 'evicted');
  tt.notOk(store.isValidOn(a, t1), 'evicted: refused on the connection that used it');
  const t2 = store.issue(60);
  tt.ok(store.isValidOn(b, t2));
  now += 60_000;
  tt.notOk(store.isValidOn(b, t2), 'expired: refused on the connection that used it');
  tt.notOk(store.isValid(t2), 'and gone from the store');
});
