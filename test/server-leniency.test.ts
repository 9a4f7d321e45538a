// What real IMDS and the ECS agent accept from sloppy clients, credport accepts too, over raw loopback
// sockets: any or no Content-Type on a bodiless request (the Ruby SDK v3 sends a form type on its empty
// token PUT), and paths with doubled slashes (the JS SDK v2 joins an endpoint ending in "/" with
// "/latest/..."). The second half checks that none of this loosens a security check: the proxy refusal,
// the Host and browser guards, the tokens, the 1 KiB body limit, and the peer gate (a second local user).

import t, { type Test } from 'tap';
import { collapseSlashes } from '../daemon/server/fast-path.js';
import { exchange, type RawResponse } from './helpers/hostile-http.js';
import { createUser, curlAs, rootForUsers, type LocalUser } from './helpers/second-user.js';
import { ACCOUNT, startStack, type Stack } from './helpers/stack.js';
import { assertPresent, needs } from './helpers/tools.js';

const ROLE = 'role-default';
const TTL = 'X-aws-ec2-metadata-token-ttl-seconds: 60';

let stack: Stack;
let user: LocalUser | undefined;
t.before(async () => {
  stack = await startStack();
  if (rootForUsers.present) user = createUser('cpl');
});
t.teardown(async () => {
  await stack?.close();
  user?.remove();
});

const port = (): number => stack.daemon!.port;
const host = (): string => `127.0.0.1:${port()}`;

/** One request written byte for byte (Host included, nothing added); its one response. */
async function raw(method: string, path: string, headers: string[] = [], body = ''): Promise<RawResponse> {
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${host()}`, ...headers, 'Connection: close'].join('\r\n');
  const ex = await exchange(port(), `${head}\r\n\r\n${body}`);
  const r = ex.responses.find((x) => x.status >= 200);
  if (!r) throw new Error(`no response to ${method} ${path} (${ex.error ?? 'nothing sent back'})`);
  return r;
}

/** A token PUT with the given extra headers and body; the token on success. */
async function putToken(path: string, headers: string[], body = ''): Promise<{ status: number; text: string }> {
  const r = await raw('PUT', path, [TTL, ...headers], body);
  return { status: r.status, text: r.body.toString('utf8') };
}

/** The credentials IMDS serves with `token`, checked against what the emulator issued. */
async function imdsCredentialsWith(tt: Test, path: string, token: string, what: string): Promise<void> {
  const r = await raw('GET', path, [`X-aws-ec2-metadata-token: ${token}`]);
  tt.equal(r.status, 200, `${what}: 200`);
  const body = JSON.parse(r.body.toString('utf8')) as { AccessKeyId: string; SecretAccessKey: string };
  tt.equal(stack.emulator.issued(body.AccessKeyId)?.secretAccessKey, body.SecretAccessKey, `${what}: the emulator's credentials`);
}

const CREDS = `/latest/meta-data/iam/security-credentials/${ROLE}`;

t.test('a form Content-Type on the empty token PUT (Ruby SDK v3) gets a token', async (tt) => {
  const put = await putToken('/latest/api/token', ['Content-Type: application/x-www-form-urlencoded', 'Content-Length: 0']);
  tt.equal(put.status, 200, 'token PUT: 200');
  await imdsCredentialsWith(tt, CREDS, put.text, 'credentials with that token');
});

t.test('any or no Content-Type on a bodiless token PUT gets a token', async (tt) => {
  const cases: [string, string[]][] = [
    ['no Content-Type, Content-Length: 0', ['Content-Length: 0']],
    ['no Content-Type, no Content-Length', []],
    ['application/json with an empty body', ['Content-Type: application/json', 'Content-Length: 0']],
    ['text/plain with an empty body', ['Content-Type: text/plain; charset=utf-8', 'Content-Length: 0']],
    ['application/octet-stream', ['Content-Type: application/octet-stream', 'Content-Length: 0']],
    ['a malformed media type', ['Content-Type: nonsense', 'Content-Length: 0']],
    ['an empty Content-Type', ['Content-Type:', 'Content-Length: 0']],
    ['a form type with an empty chunked body', ['Content-Type: application/x-www-form-urlencoded', 'Transfer-Encoding: chunked']],
  ];
  for (const [what, headers] of cases) {
    const body = headers.some((h) => h.startsWith('Transfer-Encoding')) ? '0\r\n\r\n' : '';
    const put = await putToken('/latest/api/token', headers, body);
    tt.equal(put.status, 200, `${what}: 200`);
    tt.match(put.text, /^[A-Za-z0-9+/=]{40,}$/, `${what}: a token in the body`);
  }
});

t.test('a small body of any type on the token PUT is read and ignored', async (tt) => {
  const put = await putToken('/latest/api/token', ['Content-Type: application/x-www-form-urlencoded', 'Content-Length: 3'], 'a=b');
  tt.equal(put.status, 200, 'token PUT with a 3-byte form body: 200');
  await imdsCredentialsWith(tt, CREDS, put.text, 'credentials with that token');
});

t.test('a Content-Type on the credentials GETs changes nothing', async (tt) => {
  const put = await putToken('/latest/api/token', []);
  const r = await raw('GET', CREDS, [`X-aws-ec2-metadata-token: ${put.text}`, 'Content-Type: application/x-www-form-urlencoded']);
  tt.equal(r.status, 200, 'IMDS credentials GET with a form type: 200');
  const ecs = await raw('GET', '/v1/credentials', [`Authorization: ${stack.token()}`, 'Content-Type: application/json']);
  tt.equal(ecs.status, 200, 'ECS GET with a JSON type: 200');
  tt.equal((JSON.parse(ecs.body.toString('utf8')) as { AccountId?: string }).AccountId, ACCOUNT, 'ECS body is the credentials');
});

t.test('paths with doubled slashes (JS SDK v2 with an endpoint ending in "/") are the same paths', async (tt) => {
  const put = await putToken('//latest/api/token', []);
  tt.equal(put.status, 200, 'PUT //latest/api/token: 200');
  const list = await raw('GET', '//latest/meta-data/iam/security-credentials/', [`X-aws-ec2-metadata-token: ${put.text}`]);
  tt.equal(list.status, 200, 'GET //latest/meta-data/iam/security-credentials/: 200');
  tt.equal(list.body.toString('utf8'), ROLE, 'the role name');
  await imdsCredentialsWith(tt, `//latest/meta-data/iam/security-credentials/${ROLE}`, put.text, 'GET //latest/.../role');
  await imdsCredentialsWith(tt, `/latest//meta-data/iam//security-credentials/${ROLE}`, put.text, 'doubled slashes inside the path');
  const ecs = await raw('GET', '//v1/credentials', [`Authorization: ${stack.token()}`]);
  tt.equal(ecs.status, 200, 'GET //v1/credentials: 200');
  const body = JSON.parse(ecs.body.toString('utf8')) as { AccessKeyId: string; SecretAccessKey: string };
  tt.equal(stack.emulator.issued(body.AccessKeyId)?.secretAccessKey, body.SecretAccessKey, "ECS: the emulator's credentials");
});

t.test('the leniencies loosen no security check', async (tt) => {
  const form = 'Content-Type: application/x-www-form-urlencoded';
  const proxied = await putToken('//latest/api/token', ['X-Forwarded-For: 203.0.113.9', form, 'Content-Length: 0']);
  tt.equal(proxied.status, 400, '//latest/api/token with X-Forwarded-For: 400');
  const noTtl = await raw('PUT', '//latest/api/token', [form, 'Content-Length: 0']);
  tt.equal(noTtl.status, 400, '//latest/api/token without a TTL: 400');

  const big = 'a='.padEnd(2048, 'x');
  for (const [what, headers, body] of [
    ['a 2 KiB form body', [form, `Content-Length: ${big.length}`], big],
    ['a 2 KiB body with no Content-Type', [`Content-Length: ${big.length}`], big],
    ['a 2 KiB chunked form body', [form, 'Transfer-Encoding: chunked'], `${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`],
  ] as const) {
    const r = await putToken('//latest/api/token', [...headers], body);
    tt.equal(r.status, 413, `PUT with ${what}: 413`);
    tt.notMatch(r.text, /^[A-Za-z0-9+/=]{40,}$/, `PUT with ${what}: no token`);
  }

  const noToken = await raw('GET', `//latest/meta-data/iam/security-credentials/${ROLE}`, [form]);
  tt.equal(noToken.status, 401, '//latest credentials without an IMDS token: 401');
  const badToken = await raw('GET', `//latest/meta-data/iam/security-credentials/${ROLE}`, ['X-aws-ec2-metadata-token: not-a-token']);
  tt.equal(badToken.status, 401, '//latest credentials with an unknown IMDS token: 401');
  const noAuth = await raw('GET', '//v1/credentials', ['Content-Type: application/json']);
  tt.equal(noAuth.status, 401, '//v1/credentials without Authorization: 401');

  const wrongHost = await exchange(
    port(),
    `PUT //latest/api/token HTTP/1.1\r\nHost: evil.example:${port()}\r\n${TTL}\r\n${form}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  );
  tt.equal(wrongHost.responses[0]?.status, 403, '//latest/api/token with a foreign Host: 403');
  const browser = await putToken('//latest/api/token', ['Origin: http://evil.example', form, 'Content-Length: 0']);
  tt.equal(browser.status, 403, '//latest/api/token with an Origin: 403');
});

t.test('the peer gate still refuses another user on the lenient forms', needs(rootForUsers), async (tt) => {
  if (!assertPresent(tt, rootForUsers) || !user) return;
  // curl keeps "//" as written and sends a form type with --data.
  const put = await curlAs(user, ['-X', 'PUT', '-H', TTL, '--data', '', `http://${host()}//latest/api/token`]);
  tt.equal(put.status, 403, 'another user: PUT //latest/api/token with a form type: 403');
  tt.equal((JSON.parse(put.body) as { Code?: string }).Code, 'ForbiddenUser', 'refused as ForbiddenUser');
  const ecs = await curlAs(user, ['-H', `Authorization: ${stack.token()}`, `http://${host()}//v1/credentials`]);
  tt.equal(ecs.status, 403, 'another user with the right ECS token: GET //v1/credentials: 403');
  tt.notMatch(ecs.body, /SecretAccessKey/, 'nothing leaks');
});

t.test('the fast path collapses slashes the way the router does, and only in the path', async (tt) => {
  tt.equal(
    collapseSlashes('/latest/meta-data/iam/security-credentials/r'),
    '/latest/meta-data/iam/security-credentials/r',
    'a normal path is unchanged',
  );
  tt.equal(
    collapseSlashes('//latest//meta-data///iam/security-credentials/r'),
    '/latest/meta-data/iam/security-credentials/r',
    'runs of slashes become one',
  );
  tt.equal(collapseSlashes('//v1/credentials?x=a//b'), '/v1/credentials?x=a//b', 'the query is left as sent');
});
