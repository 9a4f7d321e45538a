// Every check a request passes through before it can see a credential, driven over real loopback sockets
// against a whole daemon: the Host allowlist and the browser-header refusals that stop DNS rebinding, the
// peer and bind address checks, the ECS bearer token, the IMDSv2 session tokens, and the token file itself.
// Requests go through node:http (or a raw socket) rather than fetch, because fetch sets Host itself and a
// Host header is exactly what an attacker controls.

import t from 'tap';
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { ConfigError, loadConfig } from '../daemon/config/load.js';
import { isLoopbackIp } from '../daemon/config/listen.js';
import { startDaemon } from '../daemon/daemon.js';
import { silentLogger } from '../daemon/logging/logger.js';
import { tokensEqual } from '../daemon/server/token.js';
import { ACCOUNT, roleArnFor, startStack } from './helpers/stack.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection, with exactly the headers given (Host included: nothing is added). */
function send(port: number, path: string, o: { method?: string; headers?: Record<string, string>; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: o.host ?? '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false, setHost: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Bytes written as given, for what node:http refuses to send (no Host, line breaks in a value). */
function sendRaw(port: number, text: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(text));
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(chunks).toString('utf8');
      const split = all.indexOf('\r\n\r\n');
      const head = split === -1 ? all : all.slice(0, split);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: IncomingHttpHeaders = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0),
        headers,
        body: split === -1 ? '' : all.slice(split + 4),
      });
    });
  });
}

// tap's subtest type (with its plugins), named once so helpers can take it without `any`.
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const AWS_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const ROLE = 'role-default';

const stack = await startStack();
t.teardown(() => stack.close());
const running = stack.daemon;
if (!running) throw new Error('startStack did not start the daemon');
const daemon = running;
const port = daemon.port;
const token = stack.token();
const goodHost = `127.0.0.1:${port}`;

/** An IMDSv2 session token, the way an SDK gets one. */
async function imdsToken(ttl = '21600'): Promise<string> {
  const r = await send(port, '/latest/api/token', {
    method: 'PUT',
    headers: { host: goodHost, 'x-aws-ec2-metadata-token-ttl-seconds': ttl },
  });
  if (r.status !== 200) throw new Error(`token PUT answered ${r.status}: ${r.body}`);
  return r.body;
}

// The credentials the daemon serves now: every refused or failed answer below is checked for them.
const first = await send(port, '/v1/credentials', { headers: { host: goodHost, authorization: token } });
if (first.status !== 200) throw new Error(`the daemon did not serve credentials: ${first.status} ${first.body}`);
const served = JSON.parse(first.body) as Record<string, string>;
const secrets = [token, served.SecretAccessKey ?? '', served.Token ?? ''].filter((s) => s.length > 0);

/** A refusal must carry nothing a client could use: no credential field, no key id, no secret we know. */
function assertNoCredentials(tt: Test, r: Reply, what: string): void {
  tt.notMatch(r.body, /ASIA[A-Z0-9]{16}|SecretAccessKey|"Token"/, `${what}: no credential fields`);
  const places = [r.body, ...Object.values(r.headers).map(String)];
  tt.equal(secrets.filter((s) => places.some((p) => p.includes(s))).length, 0, `${what}: no known secret in the body or headers`);
}

/** Errors are JSON {Code, Message} and nothing else: what the JS SDK's fromHttp reads. */
function assertJsonError(tt: Test, r: Reply, status: number, code: string | RegExp, what: string): void {
  tt.equal(r.status, status, `${what}: status ${status}`);
  tt.match(r.headers['content-type'] ?? '', /^application\/json/, `${what}: JSON`);
  let body: unknown;
  try {
    body = JSON.parse(r.body);
  } catch {
    tt.fail(`${what}: body is not JSON: ${r.body.slice(0, 200)}`);
    return;
  }
  tt.same(Object.keys(body as object).sort(), ['Code', 'Message'], `${what}: exactly Code and Message`);
  const { Code, Message } = body as { Code: unknown; Message: unknown };
  tt.match(Code, code, `${what}: Code`);
  tt.ok(typeof Message === 'string' && Message.length > 0, `${what}: a Message`);
}

t.test('Host header allowlist', async (t) => {
  const imds = await imdsToken();
  // Each target is sent with everything it would need to succeed, so that only the Host decides.
  const targets: { name: string; method: string; path: string; headers: Record<string, string> }[] = [
    { name: '/health', method: 'GET', path: '/health', headers: {} },
    { name: 'ECS', method: 'GET', path: '/v1/credentials', headers: { authorization: token } },
    { name: 'ECS profile', method: 'GET', path: '/v1/credentials/default', headers: { authorization: token } },
    { name: 'IMDS token PUT', method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } },
    {
      name: 'IMDS credentials',
      method: 'GET',
      path: `/latest/meta-data/iam/security-credentials/${ROLE}`,
      headers: { 'x-aws-ec2-metadata-token': imds },
    },
    { name: 'unknown path', method: 'GET', path: '/nope', headers: {} },
  ];
  const otherPort = port === 65535 ? port - 1 : port + 1;
  const badHosts = [
    'attacker.example',
    `attacker.example:${port}`,
    `127.0.0.1:${otherPort}`,
    // No port means port 80, which is not where this daemon listens.
    '127.0.0.1',
    'localhost',
    // A fully qualified "localhost." is a different name to a browser, so a rebinding page can use it.
    `localhost.:${port}`,
    // A public name that resolves to 127.0.0.1: what a page looks like once its DNS points at loopback.
    `127.0.0.1.nip.io:${port}`,
    // Browsers used to route 0.0.0.0 to the local machine ("0.0.0.0 day").
    `0.0.0.0:${port}`,
    `127.0.0.1:${port}.attacker.example`,
    '',
  ];
  const stsBefore = stack.emulator.stats.stsCalls;
  for (const target of targets) {
    for (const host of badHosts) {
      const what = `${target.name} with Host ${JSON.stringify(host)}`;
      const r = await send(port, target.path, { method: target.method, headers: { ...target.headers, host } });
      assertJsonError(t, r, 403, 'ForbiddenHost', what);
      assertNoCredentials(t, r, what);
    }
    // HTTP/1.0 lets a client leave Host out altogether; node:http cannot, so this goes over a raw socket.
    const extra = Object.entries(target.headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const r = await sendRaw(port, `${target.method} ${target.path} HTTP/1.0\r\n${extra}\r\n`);
    assertJsonError(t, r, 403, 'ForbiddenHost', `${target.name} without Host`);
    assertNoCredentials(t, r, `${target.name} without Host`);
  }
  // A refused request must not cost an upstream call (no amplification through the daemon).
  t.equal(stack.emulator.stats.stsCalls, stsBefore, 'refused requests made no STS call');

  // The names SDKs are given, in any letter case (DNS names are case-insensitive), with the bound port.
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `LocalHost:${port}`, `[::1]:${port}`]) {
    const r = await send(port, '/v1/credentials', { headers: { host, authorization: token } });
    t.equal(r.status, 200, `Host ${host} is accepted`);
    t.equal((JSON.parse(r.body) as Record<string, string>).AccessKeyId, served.AccessKeyId, `Host ${host} gets the credentials`);
  }
});

// Config accepts any 127.0.0.0/8 address (and ::ffff:127.x) for `listen`, and `credport env` hands out
// http://<that address>:PORT. A client using that URL sends it as Host, so the daemon must accept the
// address it is bound to, or the configuration it accepted can never serve a request.
// Fails today: allowedHosts() only knows 127.0.0.1, localhost and [::1]. See the report.
// Linux routes all of 127.0.0.0/8 to loopback; macOS configures only 127.0.0.1 unless told otherwise.
const canBind127002 = await new Promise<boolean>((resolve) => {
  const probe = createServer();
  probe.once('error', () => resolve(false));
  probe.listen(0, '127.0.0.2', () => probe.close(() => resolve(true)));
});

/**
 * A second daemon on this config with a token file of its own: every start writes a new token, and the
 * first daemon re-reads its token file when a request's token does not match (token rotate), so two
 * daemons on one token file would take each other's token.
 */
function ownTokenConfig(name: string): typeof stack.config {
  return { ...stack.config, daemon: { ...stack.config.daemon, tokenFile: join(stack.dir, `${name}-token`) } };
}

t.test(
  "the Host of the daemon's own URL is accepted whatever loopback address it binds",
  { skip: canBind127002 ? false : '127.0.0.2 is not configured on this machine' },
  async (t) => {
    const other = await startDaemon({
      config: ownTokenConfig('other'),
      signer: stack.signer,
      logger: silentLogger(),
      listen: { host: '127.0.0.2', port: 0 },
      tuning: { maxAttempts: 1 },
    });
    t.teardown(() => other.close());
    const authority = new URL(other.url).host;
    t.equal(authority, `127.0.0.2:${other.port}`, 'the advertised URL names the bound address');
    // Every start writes a new token: this daemon checks the one now in the file.
    const otherToken = readFileSync(join(stack.dir, 'other-token'), 'utf8');
    const r = await send(other.port, '/v1/credentials', { host: '127.0.0.2', headers: { host: authority, authorization: otherToken } });
    t.equal(r.status, 200, `Host ${authority} (the daemon's own URL) is served: got ${r.status} ${r.body}`);
    const h = await send(other.port, '/health', { host: '127.0.0.2', headers: { host: authority } });
    t.equal(h.status, 200, `/health through the daemon's own URL: got ${h.status}`);
  },
);

t.test('browser headers are refused on every path', async (t) => {
  const imds = await imdsToken();
  const targets: { name: string; method: string; path: string; headers: Record<string, string> }[] = [
    { name: '/health', method: 'GET', path: '/health', headers: {} },
    { name: 'ECS', method: 'GET', path: '/v1/credentials', headers: { authorization: token } },
    { name: 'IMDS token PUT', method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } },
    {
      name: 'IMDS credentials',
      method: 'GET',
      path: `/latest/meta-data/iam/security-credentials/${ROLE}`,
      headers: { 'x-aws-ec2-metadata-token': imds },
    },
  ];
  // What a browser adds to a request for http://127.0.0.1:PORT (a potentially trustworthy origin, so Fetch
  // Metadata is sent): Origin on CORS and non-GET requests, and Sec-Fetch-Site/-Mode/-Dest on every one.
  // Each refused header is tried alone, so that each one is shown to be sufficient.
  const browserHeaders: Record<string, string>[] = [
    { origin: 'http://attacker.example' },
    { origin: `http://127.0.0.1:${port}` },
    { origin: 'null' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-origin' },
    { 'sec-fetch-site': 'none' },
    { 'sec-fetch-dest': 'empty' },
    { 'sec-fetch-dest': 'image' },
    { 'sec-fetch-user': '?1' },
    { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image', 'sec-fetch-storage-access': 'none' },
    { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty', Origin: 'http://attacker.example' },
  ];
  for (const target of targets) {
    for (const extra of browserHeaders) {
      const what = `${target.name} with ${JSON.stringify(extra)}`;
      const r = await send(port, target.path, { method: target.method, headers: { ...target.headers, ...extra, host: goodHost } });
      assertJsonError(t, r, 403, 'ForbiddenBrowserRequest', what);
      assertNoCredentials(t, r, what);
    }
  }

  // A lone Sec-Fetch-Mode is not a browser: Node's own fetch (undici) sends `sec-fetch-mode: cors` on
  // every request, and local Node programs are clients credport serves. Browsers always add Site and Dest.
  const r = await send(port, '/v1/credentials', { headers: { host: goodHost, authorization: token, 'sec-fetch-mode': 'cors' } });
  t.equal(r.status, 200, 'a lone sec-fetch-mode: cors is served');
  const viaFetch = await fetch(`${daemon.url}/v1/credentials`, { headers: { authorization: token } });
  t.equal(viaFetch.status, 200, "Node's fetch is served");
  t.equal(((await viaFetch.json()) as Record<string, string>).AccessKeyId, served.AccessKeyId);
});

t.test('ECS endpoint: the bearer token', async (t) => {
  const path = '/v1/credentials';
  const get = (headers: Record<string, string>, p = path): Promise<Reply> => send(port, p, { headers: { host: goodHost, ...headers } });

  let r = await get({});
  assertJsonError(t, r, 401, 'MissingToken', 'no Authorization');
  assertNoCredentials(t, r, 'no Authorization');
  r = await get({ authorization: '' });
  assertJsonError(t, r, 401, 'MissingToken', 'empty Authorization');

  const flipped = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
  const wrong: [string, string][] = [
    ['one character changed', flipped],
    ['one character short', token.slice(0, -1)],
    ['one character long', `${token}A`],
    ['Bearer scheme', `Bearer ${token}`],
    ['space inside', `${token.slice(0, 20)} ${token.slice(20)}`],
    ['tab inside', `${token.slice(0, 20)}\t${token.slice(20)}`],
    ['token twice', `${token},${token}`],
    ['lower-cased', token.toLowerCase() === token ? `${token}x` : token.toLowerCase()],
    ['the IMDS header name instead of a token', 'x-aws-ec2-metadata-token'],
  ];
  for (const [what, value] of wrong) {
    r = await get({ authorization: value });
    assertJsonError(t, r, 401, 'InvalidToken', what);
    assertNoCredentials(t, r, what);
  }
  // The IMDS session token is not a substitute for the daemon token.
  r = await get({ authorization: await imdsToken() });
  assertJsonError(t, r, 401, 'InvalidToken', 'an IMDS session token');

  // A line break cannot travel inside a header value: node:http refuses to send one, and the parser
  // refuses one sent raw (bare LF, bare CR, obsolete line folding). None of them may reach a credential.
  await t.rejects(get({ authorization: `${token}\n` }), { code: 'ERR_INVALID_CHAR' }, 'node:http will not send a newline in Authorization');
  for (const [what, line] of [
    ['LF inside', `Authorization: ${token}\nX`],
    ['CR inside', `Authorization: ${token}\rX`],
    ['folded onto a second line', `Authorization: ${token.slice(0, 20)}\r\n ${token.slice(20)}`],
    ['CRLF then an extra header', `Authorization: \r\nX-Token: ${token}`],
  ] as const) {
    r = await sendRaw(port, `GET ${path} HTTP/1.1\r\nHost: ${goodHost}\r\n${line}\r\nConnection: close\r\n\r\n`);
    t.ok(r.status === 400 || r.status === 401, `${what}: refused (${r.status})`);
    assertNoCredentials(t, r, what);
  }
  // Whitespace around a field value is not part of it (RFC 9110 5.5): the parser strips it before the
  // daemon sees the header, so a token file with a trailing space still authenticates. This pins that
  // the daemon compares what HTTP delivers, nothing looser: the inner-whitespace cases above are refused.
  r = await get({ authorization: ` ${token}\t` });
  t.equal(r.status, 200, 'surrounding whitespace is stripped by HTTP itself');

  r = await get({ authorization: token });
  t.equal(r.status, 200, 'the right token gets credentials');
  t.match(r.headers['content-type'] ?? '', /^application\/json/);
  t.equal(r.headers['cache-control'], 'no-store', 'credentials are not cacheable');
  const body = JSON.parse(r.body) as Record<string, unknown>;
  t.same(
    Object.keys(body).sort(),
    ['AccessKeyId', 'AccountId', 'Expiration', 'RoleArn', 'SecretAccessKey', 'Token'],
    'exactly the ECS keys',
  );
  for (const k of ['AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration']) t.type(body[k], 'string', `${k} is a string`);
  t.match(body.Expiration, AWS_TIME, 'Expiration is YYYY-MM-DDTHH:MM:SSZ (botocore parses nothing else)');
  t.equal(body.AccountId, ACCOUNT);
  t.equal(body.RoleArn, roleArnFor(ROLE));
  const issued = stack.emulator.issued(String(body.AccessKeyId));
  t.ok(issued, 'the credentials are ones STS issued');
  t.equal(body.SecretAccessKey, issued?.secretAccessKey);
  t.equal(body.Token, issued?.sessionToken);
  t.equal(body.Expiration, issued?.expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'));

  r = await get({ authorization: token }, '/v1/credentials/default');
  t.equal(r.status, 200, 'the default profile by name');
  t.equal((JSON.parse(r.body) as Record<string, string>).AccessKeyId, body.AccessKeyId);

  r = await get({ authorization: token }, '/v1/credentials/no-such-profile');
  assertJsonError(t, r, 404, 'ProfileNotFound', 'unknown profile');
  // Without the token an unknown profile is a 401 like any other: profile names are not probed for free.
  r = await get({}, '/v1/credentials/no-such-profile');
  assertJsonError(t, r, 401, 'MissingToken', 'unknown profile without a token');
  r = await get({ authorization: token }, '/v1/credentials/a/b');
  assertJsonError(t, r, 404, /./, 'a path below a profile');
});

t.test('IMDSv2 token PUT', async (t) => {
  const put = (headers: Record<string, string>): Promise<Reply> =>
    send(port, '/latest/api/token', { method: 'PUT', headers: { host: goodHost, ...headers } });
  const TTL = 'x-aws-ec2-metadata-token-ttl-seconds';

  let r = await put({});
  t.equal(r.status, 400, 'no TTL: 400 (the JS SDK throws on 400 rather than falling back to IMDSv1)');
  for (const ttl of ['0', '21601', '-1', '1.5', 'abc', '1e3', '0x10', '+5', '9999999', '']) {
    r = await put({ [TTL]: ttl });
    t.equal(r.status, 400, `TTL ${JSON.stringify(ttl)}: 400`);
    t.equal(r.headers[TTL], undefined, `TTL ${JSON.stringify(ttl)}: no TTL echoed`);
  }
  const tokens = new Set<string>();
  for (const ttl of ['1', '21600']) {
    r = await put({ [TTL]: ttl });
    t.equal(r.status, 200, `TTL ${ttl}: 200`);
    t.equal(r.headers[TTL], ttl, `TTL ${ttl}: echoed (the Rust SDK needs it)`);
    t.match(r.headers['content-type'] ?? '', /^text\/plain/, `TTL ${ttl}: text/plain`);
    t.ok(r.body.length >= 32, `TTL ${ttl}: a token`);
    t.notMatch(r.body, /\s/, `TTL ${ttl}: the token has no whitespace`);
    tokens.add(r.body);
  }
  t.equal(tokens.size, 2, 'each PUT issues a new token');

  // IMDS refuses forwarded token requests so that a proxy on the box cannot fetch tokens for others.
  r = await put({ [TTL]: '21600', 'x-forwarded-for': '127.0.0.1' });
  t.equal(r.status, 400, 'X-Forwarded-For: 400');
  const probe = await send(port, '/latest/meta-data/placement/region', {
    headers: { host: goodHost, 'x-aws-ec2-metadata-token': r.body.trim() },
  });
  t.equal(probe.status, 401, 'X-Forwarded-For: whatever the body holds, it is not a session token');
});

t.test('IMDSv2 metadata needs a live session token', async (t) => {
  const credsPath = `/latest/meta-data/iam/security-credentials/${ROLE}`;
  const paths = [
    '/latest/meta-data/iam/security-credentials/',
    credsPath,
    '/latest/meta-data/iam/info',
    '/latest/meta-data/placement/region',
  ];
  const get = (p: string, headers: Record<string, string>): Promise<Reply> => send(port, p, { headers: { host: goodHost, ...headers } });

  for (const p of paths) {
    // IMDSv1: no token at all. Serving this is the insecure mode real IMDS can switch off.
    let r = await get(p, {});
    t.equal(r.status, 401, `${p} without a token: 401`);
    assertNoCredentials(t, r, `${p} without a token`);
    r = await get(p, { 'x-aws-ec2-metadata-token': '' });
    t.equal(r.status, 401, `${p} with an empty token: 401`);
    r = await get(p, { 'x-aws-ec2-metadata-token': 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    t.equal(r.status, 401, `${p} with an unknown token: 401`);
    assertNoCredentials(t, r, `${p} with an unknown token`);
  }
  // The daemon's ECS token is not an IMDS session token.
  let r = await get(credsPath, { 'x-aws-ec2-metadata-token': token });
  t.equal(r.status, 401, 'the ECS token is not an IMDS token');
  assertNoCredentials(t, r, 'ECS token as IMDS token');

  // The one real wait in this file: a 1-second token, used after it lapsed.
  const short = await imdsToken('1');
  r = await get(credsPath, { 'x-aws-ec2-metadata-token': short });
  t.equal(r.status, 200, 'a fresh 1-second token works');
  await new Promise((resolve) => setTimeout(resolve, 1200));
  r = await get(credsPath, { 'x-aws-ec2-metadata-token': short });
  t.equal(r.status, 401, 'an expired token: 401');
  assertNoCredentials(t, r, 'expired token');
});

t.test('IMDSv2 metadata documents', async (t) => {
  const imds = await imdsToken();
  const get = (p: string): Promise<Reply> => send(port, p, { headers: { host: goodHost, 'x-aws-ec2-metadata-token': imds } });

  for (const p of ['/latest/meta-data/iam/security-credentials/', '/latest/meta-data/iam/security-credentials']) {
    const r = await get(p);
    t.equal(r.status, 200, `${p}: 200`);
    // botocore uses the body as the role name without stripping it.
    t.equal(r.body, ROLE, `${p}: exactly the role name, no trailing newline`);
    t.match(r.headers['content-type'] ?? '', /^text\/plain/);
  }

  let r = await get(`/latest/meta-data/iam/security-credentials/${ROLE}`);
  t.equal(r.status, 200, 'credentials: 200');
  t.match(r.headers['content-type'] ?? '', /^text\/plain/, 'credentials are JSON text, served as text/plain like IMDS');
  t.equal(r.headers['cache-control'], 'no-store');
  const c = JSON.parse(r.body) as Record<string, unknown>;
  t.equal(c.Code, 'Success');
  t.equal(c.Type, 'AWS-HMAC');
  t.match(c.LastUpdated, AWS_TIME, 'LastUpdated in the Z format');
  t.match(c.Expiration, AWS_TIME, 'Expiration in the Z format');
  t.equal(c.AccessKeyId, served.AccessKeyId, 'the same credentials as the ECS endpoint');
  t.equal(c.SecretAccessKey, served.SecretAccessKey);
  t.equal(c.Token, served.Token);
  t.equal(c.Expiration, served.Expiration);

  r = await get('/latest/meta-data/iam/security-credentials/some-other-role');
  t.equal(r.status, 404, 'another role name: 404');
  assertNoCredentials(t, r, 'another role name');
  r = await get(`/latest/meta-data/iam/security-credentials/${ROLE.toUpperCase()}`);
  t.equal(r.status, 404, 'role names are case-sensitive');
  assertNoCredentials(t, r, 'upper-cased role name');

  // The Java v2 SDK tries the extended path first and falls back to the legacy one only on 404.
  for (const p of ['/latest/meta-data/iam/security-credentials-extended/', `/latest/meta-data/iam/security-credentials-extended/${ROLE}`]) {
    r = await get(p);
    t.equal(r.status, 404, `${p}: 404`);
    assertNoCredentials(t, r, p);
  }

  r = await get('/latest/meta-data/iam/info');
  t.equal(r.status, 200, 'iam/info: 200');
  const info = JSON.parse(r.body) as Record<string, unknown>;
  t.same(Object.keys(info).sort(), ['Code', 'InstanceProfileArn', 'InstanceProfileId', 'LastUpdated']);
  t.equal(info.Code, 'Success');
  t.match(info.LastUpdated, AWS_TIME);
  t.equal(info.InstanceProfileArn, `arn:aws:iam::${ACCOUNT}:instance-profile/${ROLE}`);
  t.match(info.InstanceProfileId, /^AIPA[A-Z0-9]{17}$/);

  r = await get('/latest/meta-data/placement/region');
  t.equal(r.status, 200);
  t.equal(r.body, 'us-east-1', 'placement/region is the bare region');
  r = await get('/latest/meta-data/placement/availability-zone');
  t.equal(r.body, 'us-east-1a', 'the zone botocore derives the region from');

  r = await get('/latest/dynamic/instance-identity/document');
  t.equal(r.status, 200, 'instance identity document: 200');
  const doc = JSON.parse(r.body) as Record<string, unknown>;
  t.equal(doc.region, 'us-east-1');
  t.equal(doc.accountId, ACCOUNT);
  assertNoCredentials(t, r, 'instance identity document');
});

t.test('other methods on credential paths never return credentials', async (t) => {
  const imds = await imdsToken();
  const authed = { host: goodHost, authorization: token, 'x-aws-ec2-metadata-token': imds, 'content-length': '0' };
  const paths = [
    '/v1/credentials',
    '/v1/credentials/default',
    `/latest/meta-data/iam/security-credentials/${ROLE}`,
    '/latest/meta-data/iam/security-credentials/',
  ];
  for (const p of paths) {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await send(port, p, { method, headers: authed });
      t.ok(r.status >= 400, `${method} ${p}: refused (${r.status})`);
      assertNoCredentials(t, r, `${method} ${p}`);
    }
  }
  // A GET on the token path is not a way to get a token.
  const r = await send(port, '/latest/api/token', { headers: { host: goodHost, 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } });
  t.ok(r.status >= 400, `GET /latest/api/token: refused (${r.status})`);
});

t.test('peers and bind addresses are loopback only', async (t) => {
  const addresses = daemon.server.addresses();
  t.ok(addresses.length > 0, 'the daemon listens');
  // A string would be a Unix socket path: not expected, and not loopback either.
  const ip = (a: string | AddressInfo): string => (typeof a === 'string' ? a : a.address);
  for (const a of addresses) t.ok(isLoopbackIp(ip(a)), `bound to ${ip(a)}`);
  t.ok(isLoopbackIp(daemon.host), 'the advertised host is loopback');

  // The socket can only see loopback peers, so the peer check is exercised through inject, which
  // lets the test pose as any remote address while everything else about the request is valid.
  const inject = (remoteAddress: string, url: string, headers: Record<string, string> = {}) =>
    daemon.server.inject({ method: 'GET', url, remoteAddress, headers: { host: goodHost, ...headers } });
  for (const peer of ['10.0.0.5', '192.168.1.5', '::ffff:10.0.0.5', 'fe80::1', '2001:db8::1', '0.0.0.0', '::']) {
    for (const [url, headers] of [
      ['/health', {}],
      ['/v1/credentials', { authorization: token }],
    ] as const) {
      const r = await inject(peer, url, headers);
      t.equal(r.statusCode, 403, `peer ${peer} on ${url}: 403`);
      const body = r.json<{ Code: string; Message: string }>();
      t.equal(body.Code, 'ForbiddenPeer', `peer ${peer} on ${url}: ForbiddenPeer`);
      t.notMatch(r.body, /ASIA|SecretAccessKey/, `peer ${peer} on ${url}: no credentials`);
    }
  }
  // A loopback address passes the address check, but an injected request has no kernel socket whose
  // owner could be asked: the peer check refuses it rather than fail open. Real loopback peers are
  // served (every other test here); other users' are refused (test/peer-isolation.test.ts).
  for (const peer of ['127.0.0.1', '127.0.0.2', '::ffff:127.0.0.1', '::1']) {
    const r = await inject(peer, '/v1/credentials', { authorization: token });
    t.equal(r.statusCode, 403, `peer ${peer} without a socket: refused`);
    t.equal(r.json<{ Code: string }>().Code, 'UnidentifiedPeer', `peer ${peer} without a socket: UnidentifiedPeer`);
  }

  // `listen = "localhost:PORT"` binds every loopback address localhost names, and nothing else.
  const both = await startDaemon({
    config: ownTokenConfig('both'),
    signer: stack.signer,
    logger: silentLogger(),
    listen: { host: 'localhost', port: 0 },
    tuning: { maxAttempts: 1 },
  });
  t.teardown(() => both.close());
  for (const a of both.server.addresses()) t.ok(isLoopbackIp(ip(a)), `localhost: bound to ${ip(a)}`);
  const bothToken = readFileSync(join(stack.dir, 'both-token'), 'utf8');
  for (const [addr, hostHeader] of [
    ['127.0.0.1', `127.0.0.1:${both.port}`],
    ['::1', `[::1]:${both.port}`],
    ['127.0.0.1', `localhost:${both.port}`],
  ] as const) {
    const r = await send(both.port, '/v1/credentials', { host: addr, headers: { host: hostHeader, authorization: bothToken } });
    t.equal(r.status, 200, `localhost binds ${addr} too: served with Host ${hostHeader}`);
  }
});

t.test('config refuses non-loopback listen addresses', async (t) => {
  const base = parseToml(readFileSync(stack.configFile, 'utf8')) as { daemon: Record<string, unknown> };
  const cases: [string, RegExp][] = [
    ['0.0.0.0:80', /not a loopback address/],
    ['192.168.1.5:80', /not a loopback address/],
    ['[::]:80', /not a loopback address/],
    ['[2001:db8::1]:8080', /not a loopback address/],
    ['credport.example:80', /not an IP address or localhost/],
  ];
  for (const [listen, why] of cases) {
    const file = join(stack.dir, 'listen-test.toml');
    writeFileSync(file, stringifyToml({ ...base, daemon: { ...base.daemon, listen } }));
    let err: unknown;
    try {
      loadConfig(file, process.env);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, `listen = "${listen}" is refused`);
    const message = err instanceof Error ? err.message : '';
    t.match(message, /daemon\.listen/, `listen = "${listen}": the message names the key`);
    t.match(message, why, `listen = "${listen}": the message says why`);
    t.match(message, file, `listen = "${listen}": the message names the file`);
  }
});

t.test('token file', async (t) => {
  const file = stack.config.daemon.tokenFile;
  const st = statSync(file);
  t.equal(st.mode & 0o777, 0o600, 'created 0600');
  const start = () => startDaemon({ config: stack.config, signer: stack.signer, logger: silentLogger(), tuning: { maxAttempts: 1 } });
  const fresh = await start();
  const text = readFileSync(file, 'utf8');
  const ok = await send(fresh.port, '/v1/credentials', { headers: { host: `127.0.0.1:${fresh.port}`, authorization: text } });
  t.equal(ok.status, 200, 'the file holds exactly the token the daemon checks');
  await fresh.close();
  t.notMatch(text, /[\r\n\s]/, 'no newline or other whitespace (botocore rejects CR/LF)');
  t.match(text, /^[A-Za-z0-9_-]{43,}$/, 'base64url, at least 43 characters');
  t.ok(Buffer.from(text, 'base64url').length >= 32, 'at least 256 bits');

  // A token others could read is as good as published: refuse to start, and say how to fix it.
  chmodSync(file, 0o640);
  await t.rejects(
    start(),
    { message: new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*chmod 600`) },
    'group-readable token file: start fails naming the file and the chmod fix',
  );
  chmodSync(file, 0o604);
  await t.rejects(start(), /chmod 600/, 'world-readable token file: start fails');
  chmodSync(file, 0o600);

  // Whatever the file held before (a trailing newline botocore rejects, a short token), a start
  // replaces it with a well-formed new token.
  for (const bad of [`${token}\n`, 'short']) {
    writeFileSync(file, bad, { mode: 0o600 });
    const d = await start();
    const now = readFileSync(file, 'utf8');
    t.match(now, /^[A-Za-z0-9_-]{43,}$/, `a token file holding ${JSON.stringify(bad.slice(-6))} is replaced by a well-formed token`);
    await d.close();
  }

  // A symbolic link could point the daemon at a file someone else controls.
  const link = join(stack.dir, 'token-link');
  symlinkSync(file, link);
  await t.rejects(
    startDaemon({
      config: { ...stack.config, daemon: { ...stack.config.daemon, tokenFile: link } },
      signer: stack.signer,
      logger: silentLogger(),
    }),
    /is a symbolic link; refusing it/,
    'a symlinked token file is refused',
  );

  // A restart rotates the token: one collected earlier (say by a squatter on the port while the daemon
  // was down) dies with the daemon that issued it, while the file always holds the current one.
  const before = readFileSync(file, 'utf8');
  const again = await start();
  t.teardown(() => again.close());
  const after = readFileSync(file, 'utf8');
  t.not(after, before, 'a new token at every start');
  const stale = await send(again.port, '/v1/credentials', { headers: { host: `127.0.0.1:${again.port}`, authorization: before } });
  t.equal(stale.status, 401, 'the previous token is refused after a restart');
  const r = await send(again.port, '/v1/credentials', { headers: { host: `127.0.0.1:${again.port}`, authorization: after } });
  t.equal(r.status, 200, 'the token now in the file is accepted');
});

t.test('tokensEqual: constant-time compare that tolerates any lengths', async (t) => {
  // The reason it hashes first: the primitive throws when lengths differ.
  t.throws(() => timingSafeEqual(Buffer.from('a'), Buffer.from('ab')), 'timingSafeEqual throws on a length mismatch');
  t.equal(tokensEqual(token, token), true, 'equal tokens');
  t.equal(tokensEqual('', ''), true, 'two empty strings');
  const cases: [string, string][] = [
    ['', token],
    [token, ''],
    [token.slice(0, -1), token],
    [`${token}x`, token],
    [`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, token],
    ['a'.repeat(10_000), token],
    ['é', 'e'],
    ['\u0000', ''],
  ];
  for (const [a, b] of cases) {
    t.doesNotThrow(() => tokensEqual(a, b), `lengths ${a.length} and ${b.length}: no throw`);
    t.equal(tokensEqual(a, b), false, `lengths ${a.length} and ${b.length}: not equal`);
  }
});
