// Secret hygiene: drive one daemon, logging at trace, through everything that writes log lines (a start
// that fails upstream, 503s, recovery, ECS and IMDS fetches, refreshes that fail in several ways, 401s,
// 403s, 404s), collecting every secret that exists along the way, then check that none of them reached a
// log line or an error body. Secrets are checked by value, not by field name: redaction by name is the
// daemon's own defence and the thing under test.

import type { AwsCredentials } from '../daemon/clouds/aws/credentials.js';
import t from 'tap';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startDaemon } from '../daemon/daemon.js';
import type { KeySigner } from '../daemon/keys/signer.js';
import { createLogger } from '../daemon/logging/logger.js';
import { startStack } from './helpers/stack.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(port: number, path: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false, setHost: false },
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

// Retries far apart (equal jitter: at least half of 600 s), so no refresh runs unseen in the background
// and every credential STS mints passes through the test's hands.
const stack = await startStack({
  startDaemon: false,
  refresh: { retry_base_seconds: 600, retry_max_seconds: 600 },
  // The first STS calls fail, so the daemon starts without credentials.
  beforeStart: (e) =>
    e.setFault({ kind: 'error', status: 400, code: 'InvalidIdentityToken', message: 'injected: the identity token was rejected' }),
});
t.teardown(() => stack.close());

// Every JWT the daemon mints, recorded from the signer: the exact bearer tokens to look for.
const jwts: string[] = [];
const inner = stack.signer;
const recordingSigner: KeySigner = {
  algorithm: inner.algorithm,
  thumbprint: inner.thumbprint,
  publicJwk: () => inner.publicJwk(),
  describe: () => inner.describe(),
  close: () => inner.close(),
  async sign(data) {
    const signature = await inner.sign(data);
    jwts.push(`${Buffer.from(data).toString('ascii')}.${Buffer.from(signature).toString('base64url')}`);
    return signature;
  },
};

// Same capture as startStack's, into stack.logs, but around the recording signer.
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) stack.logs.push(line);
    cb();
  },
});
const daemon = await startDaemon({
  config: stack.config,
  signer: recordingSigner,
  logger: createLogger({ level: 'trace', destination: sink }),
  tuning: { maxAttempts: 1 },
});
let daemonClosed = false;
t.teardown(async () => {
  if (!daemonClosed) await daemon.close();
});

const port = daemon.port;
const host = `127.0.0.1:${port}`;
const daemonToken = stack.token();
const refresher = daemon.scheduler.get('default');
if (!refresher) throw new Error('no refresher for the default profile');

const imdsTokens: string[] = [];
const accessKeyIds = new Set<string>();
/** Every response that was not a success, with what was asked: all are scanned. */
const errorReplies: { what: string; r: Reply }[] = [];
/** Health documents are public (no token): scanned like error bodies. */
const healthReplies: { what: string; r: Reply }[] = [];

async function ask(what: string, path: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const r = await send(port, path, { ...o, headers: { host, ...o.headers } });
  if (r.status >= 400) errorReplies.push({ what, r });
  if (path === '/health') healthReplies.push({ what, r });
  const m = /"AccessKeyId"\s*:\s*"([^"]+)"/.exec(r.body);
  if (m?.[1]) accessKeyIds.add(m[1]);
  return r;
}

async function newImdsToken(): Promise<string> {
  const r = await ask('IMDS token', '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } });
  if (r.status !== 200) throw new Error(`IMDS token PUT answered ${r.status}`);
  imdsTokens.push(r.body);
  return r.body;
}

// Not one of the secrets scanned for below (so that test stays about real secrets): a stand-in for
// whatever a client might put in a query string.
const QUERY_MARKER = `marker${randomBytes(16).toString('hex')}`;

const credsPath = '/latest/meta-data/iam/security-credentials/role-default';

t.test('the flow', async (t) => {
  // 1. Upstream refuses: no credentials yet, so credential requests are 503 and health is degraded.
  let r = await ask('ECS while unavailable', '/v1/credentials', { headers: { authorization: daemonToken } });
  t.equal(r.status, 503, 'ECS: 503 while STS refuses');
  t.match(r.body, /InvalidIdentityToken/, 'the 503 says why');
  const imds = await newImdsToken();
  r = await ask('IMDS while unavailable', credsPath, { headers: { 'x-aws-ec2-metadata-token': imds } });
  t.equal(r.status, 503, 'IMDS: 503 while STS refuses');
  r = await ask('health while unavailable', '/health');
  t.equal(r.status, 503, 'health: degraded');

  // 2. Refreshes failing in the other ways STS can fail: unreadable and cut-off answers, a dropped connection.
  for (const kind of ['malformed', 'truncated', 'unavailable'] as const) {
    stack.emulator.setFault({ kind });
    await t.rejects(refresher.refreshNow(), `a ${kind} answer fails the refresh`);
  }

  // 3. Recovery.
  stack.emulator.setFault(null);
  const fresh = (await refresher.refreshNow()) as AwsCredentials;
  accessKeyIds.add(fresh.accessKeyId);
  r = await ask('ECS', '/v1/credentials', { headers: { authorization: daemonToken } });
  t.equal(r.status, 200, 'ECS serves credentials');
  r = await ask('ECS profile', '/v1/credentials/default', { headers: { authorization: daemonToken } });
  t.equal(r.status, 200, 'ECS by profile name');
  const imds2 = await newImdsToken();
  r = await ask('IMDS', credsPath, { headers: { 'x-aws-ec2-metadata-token': imds2 } });
  t.equal(r.status, 200, 'IMDS serves credentials');
  r = await ask('health', '/health');
  t.equal(r.status, 200, 'health: ok');

  // 4. A later refresh fails with an STS error while the last good credentials are still served.
  stack.emulator.setFault(
    { kind: 'error', status: 403, code: 'AccessDenied', message: 'injected: not authorized to perform sts:AssumeRoleWithWebIdentity' },
    { times: 1 },
  );
  await t.rejects(refresher.refreshNow(), { code: 'AccessDenied' }, 'the refresh fails');
  r = await ask('ECS after a failed refresh', '/v1/credentials', { headers: { authorization: daemonToken } });
  t.equal(r.status, 200, 'the last good credentials are still served');

  // 5. A second good refresh, so that more than one set of credentials has existed.
  accessKeyIds.add(((await refresher.refreshNow()) as AwsCredentials).accessKeyId);
  r = await ask('ECS after the second refresh', '/v1/credentials', { headers: { authorization: daemonToken } });
  t.equal(r.status, 200, 'ECS after the second refresh: 200');

  // 6. Refusals, each carrying real secrets in the headers, so that a log of headers would show them.
  const imds3 = await newImdsToken();
  const loaded = { authorization: daemonToken, 'x-aws-ec2-metadata-token': imds3 };
  r = await ask('ECS wrong token', '/v1/credentials', { headers: { authorization: `${daemonToken.slice(0, -1)}x` } });
  t.equal(r.status, 401, 'ECS wrong token: 401');
  r = await ask('ECS no token', '/v1/credentials');
  t.equal(r.status, 401, 'ECS no token: 401');
  r = await ask('ECS token in the IMDS header', '/v1/credentials', { headers: { 'x-aws-ec2-metadata-token': daemonToken } });
  t.equal(r.status, 401, 'ECS token in the IMDS header: 401');
  r = await ask('IMDS unknown token', credsPath, { headers: { 'x-aws-ec2-metadata-token': `${imds3.slice(0, -2)}xx` } });
  t.equal(r.status, 401, 'IMDS unknown token: 401');
  r = await ask('IMDS daemon token', credsPath, { headers: { 'x-aws-ec2-metadata-token': daemonToken } });
  t.equal(r.status, 401, 'IMDS daemon token: 401');
  r = await ask('IMDS wrong role', '/latest/meta-data/iam/security-credentials/other', { headers: loaded });
  t.equal(r.status, 404, 'IMDS wrong role: 404');
  r = await ask('ECS unknown profile', '/v1/credentials/nobody', { headers: loaded });
  t.equal(r.status, 404, 'ECS unknown profile: 404');
  r = await ask('wrong Host', '/v1/credentials', { headers: { ...loaded, host: 'attacker.example' } });
  t.equal(r.status, 403, 'wrong Host: 403');
  r = await ask('browser', credsPath, { headers: { ...loaded, origin: 'http://attacker.example', 'sec-fetch-mode': 'cors' } });
  t.equal(r.status, 403, 'browser: 403');
  r = await ask('XFF token PUT', '/latest/api/token', {
    method: 'PUT',
    headers: { ...loaded, 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.0.0.1' },
  });
  t.equal(r.status, 400, 'XFF token PUT: 400');

  // 7. A refused request that carries a secret-looking query (a pre-signed-URL habit): see the last test.
  r = await ask('query on a refused request', `/v1/credentials?X-Amz-Security-Token=${QUERY_MARKER}`, {
    headers: { host: 'attacker.example' },
  });
  t.equal(r.status, 403, 'refused');

  // 8. Stop: the scan below covers the whole life of the daemon, shutdown included.
  await daemon.close();
  daemonClosed = true;
});

t.test('no secret reaches a log line or an error body', async (t) => {
  const logs = [...stack.logs];
  // DUMP_LOGS=1 prints what the scan saw, for whoever has to read a failure.
  if (process.env.DUMP_LOGS) for (const l of logs) console.error(l);
  t.ok(logs.length > 0, 'the daemon logged');
  // The scan means something only if the daemon logged at its most verbose and the flow happened.
  const levels = new Set(logs.map((l) => (JSON.parse(l) as { level: number }).level));
  t.ok(levels.has(10) || levels.has(20), 'trace/debug lines were written');
  for (const msg of ['credential refresh failed', 'credentials refreshed', 'request refused']) {
    t.ok(
      logs.some((l) => l.includes(msg)),
      `the log has "${msg}"`,
    );
  }
  t.ok(jwts.length >= 3, `JWTs were minted (${jwts.length})`);
  t.ok(imdsTokens.length >= 3, 'IMDS tokens were issued');

  // Every credential STS minted is accounted for: each went through refreshNow or a response we read.
  t.equal(accessKeyIds.size, stack.emulator.stats.stsSuccesses, 'every minted credential was seen');
  const awsSecrets: [string, string][] = [];
  for (const id of accessKeyIds) {
    const issued = stack.emulator.issued(id);
    t.ok(issued, `${id} was issued by STS`);
    if (!issued) continue;
    awsSecrets.push([`secret access key of ${id}`, issued.secretAccessKey], [`session token of ${id}`, issued.sessionToken]);
    // A cut-off copy is as bad: look for the first 24 characters too.
    awsSecrets.push([`start of the secret access key of ${id}`, issued.secretAccessKey.slice(0, 24)]);
    awsSecrets.push([`start of the session token of ${id}`, issued.sessionToken.slice(0, 24)]);
  }

  const pem = readFileSync(join(stack.dir, 'device-key.pem'), 'utf8');
  const d = createPrivateKey(pem).export({ format: 'jwk' }).d;
  const pemLines = pem.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));

  const secrets: [string, string][] = [
    ['the daemon token', daemonToken],
    ...imdsTokens.map((v, i): [string, string] => [`IMDS token ${i}`, v]),
    ...awsSecrets,
    ...jwts.map((v, i): [string, string] => [`JWT ${i}`, v]),
    // The signature alone is what makes a JWT a bearer token.
    ...jwts.map((v, i): [string, string] => [`signature of JWT ${i}`, v.slice(v.lastIndexOf('.') + 1)]),
    ...pemLines.map((v, i): [string, string] => [`PEM line ${i}`, v]),
    ['the private scalar d', d ?? 'no-d-exported'],
  ];
  // Standard base64 secrets may be written JSON-escaped ("/" as "\/" by some encoders): look for both forms.
  const forms = (v: string): string[] => [...new Set([v, JSON.stringify(v).slice(1, -1), v.replace(/\//g, '\\/')])];

  const scanned: { where: string; text: string }[] = [
    ...logs.map((text, i) => ({ where: `log line ${i}`, text })),
    ...errorReplies.map(({ what, r }) => ({
      where: `${what} (${r.status}) body+headers`,
      text: `${r.body}\n${JSON.stringify(r.headers)}`,
    })),
    ...healthReplies.map(({ what, r }) => ({ where: `${what} body`, text: r.body })),
  ];
  t.ok(errorReplies.length >= 10, `error bodies were collected (${errorReplies.length})`);

  const leaks: string[] = [];
  for (const { where, text } of scanned) {
    for (const [name, value] of secrets) {
      if (forms(value).some((f) => text.includes(f))) leaks.push(`${name} in ${where}`);
    }
    // Whatever JWT it may be: three base64url parts with a JSON header.
    if (/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.test(text)) leaks.push(`a JWT-shaped string in ${where}`);
    if (/PRIVATE KEY/.test(text)) leaks.push(`PEM armour in ${where}`);
    // Raw STS XML would carry credentials; it must never be copied into a log or an answer.
    if (/<SecretAccessKey>|<SessionToken>/.test(text)) leaks.push(`STS credential XML in ${where}`);
  }
  t.same(leaks, [], 'no secret in any log line or error body');
});

// Everywhere else the daemon logs route patterns (/v1/credentials/:profile), never the raw URL; the
// refused-request warning logs req.url, query string included, for requests from anyone on the machine.
// Fails today. See the report: guards.ts should log the path without its query.
t.test("a refused request's query string is not logged", async (t) => {
  const lines = stack.logs.filter((l) => l.includes(QUERY_MARKER));
  t.same(lines, [], 'no log line copies the query string');
});
