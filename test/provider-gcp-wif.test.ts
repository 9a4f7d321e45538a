/**
 * Provider gcp-wif against an in-test loopback stand-in for Google STS and IAM Credentials that
 * records what Google would get (form fields, headers, the JWT, verified with jose against the device
 * key's public JWK) and answers in Google's shapes: success, errors kept, malformed and oversized
 * answers refused, the deadline and the cancel respected, the clock skew learnt and the subject token
 * cached.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import t, { type Test } from 'tap';
import { checkGcpProfiles } from '../daemon/clouds/gcp/checks.js';
import { GcpWifProfile, type GcpWifProfileConfig } from '../daemon/clouds/gcp/schema.js';
import { gcpWifProviderOptions } from '../daemon/clouds/gcp/wif/from-profile.js';
import { federatedPrincipal, GcpWifProvider, type GcpWifProviderOptions } from '../daemon/clouds/gcp/wif/provider.js';
import { IAT_MARGIN_SECONDS } from '../daemon/clouds/gcp/wif/subject-token.js';
import { defaultSubject } from '../daemon/identity/jwt.js';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import type { KeySigner } from '../daemon/keys/signer.js';
import { ProviderError } from '../daemon/providers/types.js';

const AUDIENCE = '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/devices/providers/credport';
const ISSUER = 'https://issuer.example.test';
const SA = 'deployer@my-project.iam.gserviceaccount.com';
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const STS_TOKEN = 'ya29.federated-token-from-sts';
const SA_TOKEN = 'ya29.service-account-token';
const MIN = 60_000;

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Handler = (req: Seen, res: ServerResponse) => void;

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
};

const stsOk: Handler = (_req, res) =>
  json(res, 200, {
    access_token: STS_TOKEN,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: 3599,
  });
const iamOk: Handler = (_req, res) => json(res, 200, { accessToken: SA_TOKEN, expireTime: new Date(Date.now() + 3600_000).toISOString() });

/** Google STS and IAM Credentials on loopback; handlers are replaced per test. */
async function fakeGoogle(t: Test) {
  const seen: Seen[] = [];
  const state = { sts: stsOk, iam: iamOk };
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      if (s.path === '/v1/token') state.sts(s, res);
      else if (s.path.startsWith('/v1/projects/-/serviceAccounts/')) state.iam(s, res);
      else json(res, 404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    seen,
    state,
    sts: () => seen.filter((s) => s.path === '/v1/token'),
    iam: () => seen.filter((s) => s.path !== '/v1/token'),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'credport-gcp-'));
const signer = FileKeySigner.create(join(dir, 'key.pem'));
const SUBJECT = defaultSubject(signer);

function provider(base: string, over: Partial<GcpWifProviderOptions> = {}): GcpWifProvider {
  return new GcpWifProvider({
    signer,
    issuer: ISSUER,
    subject: SUBJECT,
    audience: AUDIENCE,
    tokenLifetimeSeconds: 300,
    scopes: [CLOUD_PLATFORM],
    lifetimeSeconds: 3600,
    stsEndpoint: base,
    iamCredentialsEndpoint: base,
    maxAttempts: 1,
    requestTimeoutMs: 2000,
    retryBaseMs: 1,
    ...over,
  });
}

async function failure(p: GcpWifProvider, signal?: AbortSignal): Promise<ProviderError> {
  try {
    await p.fetch(signal);
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

/** The JWT as Google would check it: signature against the published JWK, kid, ES256, iss, aud. */
async function verifyJwt(t: Test, token: string) {
  const header = decodeProtectedHeader(token);
  t.equal(header.alg, 'ES256');
  t.equal(header.kid, signer.thumbprint, 'kid is the key thumbprint');
  const key = await importJWK({ ...signer.publicJwk(), alg: 'ES256' }, 'ES256');
  const { payload } = await jwtVerify(token, key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'] });
  t.equal(payload.sub, SUBJECT);
  return payload as { iat: number; exp: number; nbf: number; jti: string };
}

t.test('without a service account: the federated token, and exactly what STS expects', async (t) => {
  const g = await fakeGoogle(t);
  const scopes = [CLOUD_PLATFORM, 'https://www.googleapis.com/auth/userinfo.email'];
  const p = provider(g.base, { scopes });
  const before = Date.now();
  const token = await p.fetch();
  t.equal(token.accessToken, STS_TOKEN);
  t.equal(
    token.principal,
    `principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/devices/subject/${SUBJECT}`,
  );
  t.same(token.scopes, scopes);
  t.ok(
    token.expiration.getTime() >= before + 3599_000 && token.expiration.getTime() <= Date.now() + 3599_000,
    'expires_in counted from the request',
  );
  t.equal(g.seen.length, 1, 'no impersonation call');
  const [req] = g.sts();
  t.equal(req?.method, 'POST');
  t.match(req?.headers['content-type'], /^application\/x-www-form-urlencoded/);
  t.notOk(req?.headers.authorization, 'no Authorization header at STS');
  const form = new URLSearchParams(req?.body);
  t.same([...form.keys()].sort(), ['audience', 'grant_type', 'requested_token_type', 'scope', 'subject_token', 'subject_token_type']);
  t.equal(form.get('grant_type'), 'urn:ietf:params:oauth:grant-type:token-exchange');
  t.equal(form.get('audience'), AUDIENCE);
  t.equal(form.get('scope'), scopes.join(' '), 'scopes space-separated');
  t.equal(form.get('requested_token_type'), 'urn:ietf:params:oauth:token-type:access_token');
  t.equal(form.get('subject_token_type'), 'urn:ietf:params:oauth:token-type:jwt');
  const claims = await verifyJwt(t, form.get('subject_token') ?? '');
  const now = Math.floor(Date.now() / 1000);
  t.ok(claims.iat <= now - IAT_MARGIN_SECONDS + 1, 'iat back-dated by the margin');
  t.ok(claims.iat >= now - IAT_MARGIN_SECONDS - 5, 'and no more without a skew');
  t.ok(claims.exp >= now + 300 - 2 && claims.exp <= now + 300 + 1, 'exp is the lifetime from the real now');
  t.same(p.describe(), {
    type: 'gcp-wif',
    source: `STS token exchange at ${new URL(g.base).host}`,
    principal: token.principal,
    audience: AUDIENCE,
  });
  t.equal(p.unattended, true);
});

t.test('with a service account: STS for cloud-platform, then generateAccessToken with the Bearer token', async (t) => {
  const g = await fakeGoogle(t);
  const scopes = ['https://www.googleapis.com/auth/devstorage.read_only'];
  const expireTime = new Date(Date.now() + 1800_000);
  g.state.iam = (_req, res) => json(res, 200, { accessToken: SA_TOKEN, expireTime: expireTime.toISOString().replace('Z', '123456Z') });
  const p = provider(g.base, { serviceAccount: SA, scopes, lifetimeSeconds: 1800 });
  const token = await p.fetch();
  t.equal(token.accessToken, SA_TOKEN);
  t.equal(token.principal, SA);
  t.same(token.scopes, scopes);
  t.equal(token.expiration.getTime(), expireTime.getTime(), 'expireTime read (nanoseconds and all), no skew to apply');
  t.equal(new URLSearchParams(g.sts()[0]?.body).get('scope'), CLOUD_PLATFORM, 'the STS token gets cloud-platform');
  const [iam] = g.iam();
  t.equal(iam?.method, 'POST');
  t.equal(iam?.path, `/v1/projects/-/serviceAccounts/${encodeURIComponent(SA)}:generateAccessToken`);
  t.equal(iam?.headers.authorization, `Bearer ${STS_TOKEN}`);
  t.match(iam?.headers['content-type'], /^application\/json/);
  t.same(JSON.parse(iam?.body ?? '{}'), { scope: scopes, lifetime: '1800s' });
  t.same(p.describe(), {
    type: 'gcp-wif',
    source: `STS token exchange at ${new URL(g.base).host} + generateAccessToken for ${SA}`,
    principal: SA,
    audience: AUDIENCE,
  });
});

t.test("Google's errors keep their code and message", async (t) => {
  const g = await fakeGoogle(t);
  let subjectToken = '';
  g.state.sts = (req, res) => {
    subjectToken = new URLSearchParams(req.body).get('subject_token') ?? '';
    json(res, 400, {
      error: 'invalid_grant',
      error_description: `The audience in ID Token [${subjectToken}] does not match the expected audience.`,
    });
  };
  const e = await failure(provider(g.base, { maxAttempts: 3 }));
  t.equal(e.code, 'invalid_grant');
  t.match(e.message, /^The audience in ID Token \[\[redacted\]\] does not match the expected audience\.$/);
  t.notOk(e.message.includes(subjectToken.slice(0, 40)), 'an echoed JWT never reaches the message');
  t.equal(e.retryable, false);
  t.equal(e.upstreamStatus, 400);
  t.equal(g.sts().length, 1, 'a refusal is not retried');

  g.state.sts = stsOk;
  g.state.iam = (_req, res) =>
    json(res, 403, {
      error: {
        code: 403,
        message: "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        status: 'PERMISSION_DENIED',
      },
    });
  const denied = await failure(provider(g.base, { serviceAccount: SA, maxAttempts: 3 }));
  t.equal(denied.code, 'PERMISSION_DENIED');
  t.equal(denied.message, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
  t.equal(denied.retryable, false);
  t.equal(denied.upstreamStatus, 403);

  g.state.iam = (_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<html><body>Bad Gateway</body></html>');
  };
  const proxy = await failure(provider(g.base, { serviceAccount: SA }));
  t.equal(proxy.code, 'INTERNAL', "a page without Google's body is named by its status");
  t.equal(proxy.retryable, true);
});

t.test('5xx and 429 are retried per call; a call that succeeded is not repeated', async (t) => {
  const g = await fakeGoogle(t);
  let stsCalls = 0;
  g.state.sts = (req, res) =>
    ++stsCalls === 1 ? json(res, 503, { error: 'temporarily_unavailable', error_description: 'try later' }) : stsOk(req, res);
  let iamCalls = 0;
  g.state.iam = (req, res) =>
    ++iamCalls < 3 ? json(res, 429, { error: { code: 429, message: 'Quota exceeded', status: 'RESOURCE_EXHAUSTED' } }) : iamOk(req, res);
  const token = await provider(g.base, { serviceAccount: SA, maxAttempts: 3 }).fetch();
  t.equal(token.accessToken, SA_TOKEN);
  t.equal(g.sts().length, 2, 'STS: one failure, one success');
  t.equal(g.iam().length, 3, 'IAM: two throttled, one success');
  t.equal(new Set(g.iam().map((s) => s.headers.authorization)).size, 1, 'the one STS token reused for every IAM attempt');

  g.state.sts = (_req, res) => json(res, 500, { error: 'server_error', error_description: 'internal' });
  const before = g.sts().length;
  const e = await failure(provider(g.base, { maxAttempts: 2 }));
  t.equal(e.code, 'server_error');
  t.equal(e.retryable, true);
  t.equal(g.sts().length - before, 2, 'bounded by maxAttempts');
});

t.test('malformed answers are refused', async (t) => {
  const g = await fakeGoogle(t);
  const good = { access_token: STS_TOKEN, token_type: 'Bearer', expires_in: 3600 };
  const stsCases: Array<[string, unknown]> = [
    ['not JSON', '<html>captive portal</html>'],
    ['truncated', JSON.stringify(good).slice(0, 30)],
    ['empty', ''],
    ['an array', [good]],
    ['no access_token', { ...good, access_token: undefined }],
    ['empty access_token', { ...good, access_token: '' }],
    ['access_token with a newline', { ...good, access_token: 'ya29.a\r\nX-Injected: 1' }],
    ['access_token not a string', { ...good, access_token: 42 }],
    ['token_type not Bearer', { ...good, token_type: 'mac' }],
    ['no token_type', { ...good, token_type: undefined }],
    ['issued_token_type not an access token', { ...good, issued_token_type: 'urn:ietf:params:oauth:token-type:id_token' }],
    ['expires_in 0', { ...good, expires_in: 0 }],
    ['expires_in negative', { ...good, expires_in: -5 }],
    ['expires_in fractional', { ...good, expires_in: 1.5 }],
    ['expires_in a string', { ...good, expires_in: '3600' }],
    ['expires_in beyond 12 h', { ...good, expires_in: 43201 }],
  ];
  for (const [name, body] of stsCases) {
    g.state.sts = (_req, res) => json(res, 200, body);
    const e = await failure(provider(g.base));
    t.equal(e.code, 'MalformedResponse', `STS: ${name}`);
  }
  g.state.sts = stsOk;
  const soon = new Date(Date.now() + 3600_000).toISOString();
  const iamCases: Array<[string, unknown, string]> = [
    ['not JSON', 'accessToken=x', 'MalformedResponse'],
    ['no accessToken', { expireTime: soon }, 'MalformedResponse'],
    ['no expireTime', { accessToken: SA_TOKEN }, 'MalformedResponse'],
    ['expireTime not RFC 3339', { accessToken: SA_TOKEN, expireTime: 'tomorrow' }, 'MalformedResponse'],
    ['expireTime epoch seconds', { accessToken: SA_TOKEN, expireTime: Math.floor(Date.now() / 1000) + 3600 }, 'MalformedResponse'],
    ['expireTime far beyond the lifetime', { accessToken: SA_TOKEN, expireTime: '9999-12-31T23:59:59Z' }, 'ImplausibleExpiration'],
  ];
  for (const [name, body, code] of iamCases) {
    g.state.iam = (_req, res) => json(res, 200, body);
    const e = await failure(provider(g.base, { serviceAccount: SA }));
    t.equal(e.code, code, `IAM: ${name}`);
  }
});

t.test('an oversized answer is cut off while it streams', async (t) => {
  const g = await fakeGoogle(t);
  let written = 0;
  g.state.sts = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(1024, 'a');
    // Bounded: at most 1 MiB, stopped as soon as the client goes away.
    const pump = () => {
      while (written < 1024 && !res.destroyed) {
        written += 1;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => void (written = 1024));
    pump();
  };
  const e = await failure(provider(g.base, { maxBodyBytes: 4096, maxAttempts: 3 }));
  t.equal(e.code, 'ResponseTooLarge');
  t.equal(g.sts().length, 1, 'not retried at once: it would be as large again');
});

t.test('the deadline and the cancel are respected', async (t) => {
  const g = await fakeGoogle(t);
  let arrived: () => void = () => undefined;
  g.state.sts = () => {
    arrived();
  };
  const timedOut = await failure(provider(g.base, { requestTimeoutMs: 200 }));
  t.equal(timedOut.code, 'UpstreamTimeout');
  t.equal(timedOut.retryable, true);

  const controller = new AbortController();
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  const pending = failure(provider(g.base, { requestTimeoutMs: 30_000 }), controller.signal);
  await reached;
  controller.abort();
  t.equal((await pending).code, 'Aborted');
});

t.test('unreachable: named, retryable', async (t) => {
  const g = await fakeGoogle(t);
  const closed = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const e = await failure(provider(g.base, { stsEndpoint: `http://127.0.0.1:${closed}` }));
  t.equal(e.code, 'UpstreamUnreachable');
  t.match(e.message, /ECONNREFUSED/);
  t.equal(e.retryable, true);
});

t.test('a Google clock behind ours: the refusal teaches the skew, iat moves back, one re-mint', async (t) => {
  const g = await fakeGoogle(t);
  const behindMs = 10 * MIN;
  // As Google does: an iat in its future is refused, and every answer carries its Date.
  g.state.sts = (req, res) => {
    const googleNow = Date.now() - behindMs;
    const iat = decodeJwt(new URLSearchParams(req.body).get('subject_token') ?? '').iat ?? 0;
    const date = { date: new Date(googleNow).toUTCString() };
    if (iat * 1000 > googleNow + 5_000)
      return json(res, 400, { error: 'invalid_grant', error_description: 'The iat claim is in the future.' }, date);
    json(res, 200, { access_token: STS_TOKEN, token_type: 'Bearer', expires_in: 3600 }, date);
  };
  const p = provider(g.base);
  const token = await p.fetch();
  t.equal(token.accessToken, STS_TOKEN);
  t.equal(g.sts().length, 2, 'refused once, then accepted');
  t.ok(Math.abs(p.clockSkewMs + behindMs) < 3000, 'the skew is learnt');
  const [first, second] = g.sts().map((s) => decodeJwt(new URLSearchParams(s.body).get('subject_token') ?? ''));
  const now = Math.floor(Date.now() / 1000);
  t.ok((first?.iat ?? 0) > now - 60, 'the first token was minted before the skew was known');
  const iat = second?.iat ?? Infinity;
  t.ok(iat <= now - behindMs / 1000 - IAT_MARGIN_SECONDS + 3, `iat moved back by the skew and the margin (${now - iat} s)`);
  t.ok(iat >= now - behindMs / 1000 - IAT_MARGIN_SECONDS - 5, 'and not further');
  t.ok((second?.exp ?? 0) >= now + 300 - 2, 'exp is still the lifetime from the real now');
  const served = await p.subjectToken();
  t.equal(served.token, new URLSearchParams(g.sts()[1]?.body).get('subject_token'), 'the endpoint serves the re-minted token');
  await verifyJwt(t, served.token);
});

t.test('a Google clock ahead of ours: exp covers the lifetime by its clock', async (t) => {
  const g = await fakeGoogle(t);
  const aheadMs = 10 * MIN;
  const sts = stsOk;
  g.state.sts = (req, res) => {
    res.setHeader('date', new Date(Date.now() + aheadMs).toUTCString());
    sts(req, res);
  };
  const p = provider(g.base);
  await p.fetch();
  const { token } = await p.subjectToken();
  const claims = decodeJwt(token);
  const now = Math.floor(Date.now() / 1000);
  t.not(token, new URLSearchParams(g.sts()[0]?.body).get('subject_token'), 're-minted once the skew is known');
  t.ok((claims.exp ?? 0) >= now + aheadMs / 1000 + 300 - 3, "exp is lifetime after Google's now");
  t.ok((claims.iat ?? Infinity) <= now - IAT_MARGIN_SECONDS + 1, 'iat is still in the past by our clock');
});

t.test('the subject token is cached for half its life, minted once for concurrent callers', async (t) => {
  let signatures = 0;
  const counting: KeySigner = {
    algorithm: 'ES256',
    thumbprint: signer.thumbprint,
    publicJwk: () => signer.publicJwk(),
    sign: (data) => {
      signatures += 1;
      return signer.sign(data);
    },
    describe: () => signer.describe(),
    close: () => signer.close(),
  };
  let now = Date.now();
  const p = provider('http://127.0.0.1:9', { signer: counting, now: () => now, tokenLifetimeSeconds: 600 });
  const [a, b] = await Promise.all([p.subjectToken(), p.subjectToken()]);
  t.equal(a.token, b.token);
  t.equal(signatures, 1, 'one signature for two concurrent callers');
  t.equal(a.expiration.getTime(), now + 600_000);
  now += 299_000;
  t.equal((await p.subjectToken()).token, a.token, 'reused with more than half its lifetime left');
  t.equal(signatures, 1);
  now += 2_000;
  const c = await p.subjectToken();
  t.not(c.token, a.token, 're-minted past half its lifetime');
  t.equal(signatures, 2);
  t.equal(decodeJwt(c.token).iat, Math.floor(now / 1000) - IAT_MARGIN_SECONDS, 'iat from the injected clock');
  const controller = new AbortController();
  controller.abort();
  await t.rejects(p.subjectToken(controller.signal), { code: 'Aborted' });
});

t.test('the device key: its failures keep their code; user presence means on demand only', async (t) => {
  const g = await fakeGoogle(t);
  let attempts = 0;
  const unplugged: KeySigner = {
    algorithm: 'ES256',
    thumbprint: signer.thumbprint,
    publicJwk: () => signer.publicJwk(),
    sign: () => {
      attempts += 1;
      return Promise.reject(new KeyBackendError('TOKEN_NOT_PRESENT', 'the token was removed'));
    },
    describe: () => ({ backend: 'pkcs11', location: 'test token', userPresence: true }),
    close: () => Promise.resolve(),
  };
  const p = provider(g.base, { signer: unplugged, maxAttempts: 3 });
  t.equal(p.unattended, false, 'a key that needs a person refreshes on demand');
  const e = await failure(p);
  t.equal(e.code, 'TOKEN_NOT_PRESENT');
  t.equal(e.retryable, true, 'retryable by the refresher');
  t.equal(attempts, 1, 'but the key is not asked again within one fetch');
  t.equal(g.seen.length, 0, 'nothing sent without a token');
});

t.test('settings that can never work are refused at construction', async (t) => {
  const g = await fakeGoogle(t);
  const refused = (over: Partial<GcpWifProviderOptions>, why: string) =>
    t.throws(() => provider(g.base, over), { name: 'ProviderError', code: 'InvalidConfiguration' }, why);
  refused({ stsEndpoint: 'http://sts.example.com' }, 'plain http off loopback');
  refused({ iamCredentialsEndpoint: 'ftp://127.0.0.1' }, 'not http(s)');
  refused({ stsEndpoint: 'https://sts.example.com/?x=1' }, 'a query');
  refused(
    { audience: 'https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x' },
    'not a provider name',
  );
  refused({ scopes: [] }, 'no scope');
  refused({ scopes: ['a b'] }, 'a scope with a space');
  refused({ lifetimeSeconds: 599 }, 'lifetime too short');
  t.doesNotThrow(
    () => provider(g.base, { stsEndpoint: 'http://localhost:1/', iamCredentialsEndpoint: 'http://[::1]:1' }),
    'loopback http is fine',
  );
  t.equal(
    new URL(`https://${provider(g.base, { stsEndpoint: 'https://sts.example.com/' }).describe().source.split(' at ')[1]}`).host,
    'sts.example.com',
  );
  t.equal(
    federatedPrincipal(AUDIENCE, 'device:x'),
    'principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/devices/subject/device:x',
  );
});

t.test("the profile schema: defaults, Google's naming rules, nothing unknown", async (t) => {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
  ajv.addKeyword({ keyword: 'expect', schemaType: 'string' });
  const validate = ajv.compile(GcpWifProfile);
  const minimal: Record<string, unknown> = { type: 'gcp-wif', audience: AUDIENCE };
  t.ok(validate(minimal), JSON.stringify(validate.errors));
  t.same(minimal, {
    type: 'gcp-wif',
    audience: AUDIENCE,
    scopes: [CLOUD_PLATFORM],
    lifetime_seconds: 3600,
    sts_endpoint: 'https://sts.googleapis.com',
    iamcredentials_endpoint: 'https://iamcredentials.googleapis.com',
    metadata_server: false,
  });
  const ok = (over: Record<string, unknown>, why: string) => t.ok(validate({ type: 'gcp-wif', audience: AUDIENCE, ...over }), why);
  const bad = (over: Record<string, unknown>, why: string) => t.notOk(validate({ type: 'gcp-wif', audience: AUDIENCE, ...over }), why);
  ok(
    {
      service_account: SA,
      project_id: 'my-project',
      lifetime_seconds: 43200,
      metadata_server: true,
      default: true,
      allow_executables: ['/usr/bin/gcloud'],
    },
    'everything',
  );
  ok({ service_account: '123456789012-compute@developer.gserviceaccount.com' }, 'Compute Engine default service account');
  ok({ service_account: 'my-project@appspot.gserviceaccount.com' }, 'App Engine default service account');
  ok({ service_account: 'sa-name@my-project.example.com.iam.gserviceaccount.com' }, 'a domain-scoped project');
  ok({ project_id: 'example.com:my-project' }, 'a domain-scoped project id');
  bad({ service_account: 'Deployer@my-project.iam.gserviceaccount.com' }, 'upper case');
  bad({ service_account: 'deployer-@my-project.iam.gserviceaccount.com' }, 'trailing hyphen');
  bad({ service_account: 'deployer@my-project.iam.gserviceaccount.com.evil.test' }, 'another domain');
  bad({ project_id: 'My-Project' }, 'project id upper case');
  bad({ project_id: '1project' }, 'project id starting with a digit');
  bad({ project_id: 'abc' }, 'project id too short');
  bad({ audience: AUDIENCE.replace('123456789', 'my-project') }, 'a project id where the number belongs');
  bad({ audience: `https:${AUDIENCE}` }, 'the https: form is the JWT audience, not the STS one');
  bad({ scopes: [] }, 'no scopes');
  bad({ scopes: ['a b'] }, 'a scope with a space');
  bad({ lifetime_seconds: 599 }, 'lifetime below 600');
  bad({ lifetime_seconds: 43201 }, 'lifetime above 12 h');
  bad({ sts_endpoint: 'sts.googleapis.com' }, 'an endpoint without a scheme');
  bad({ role_arn: 'arn:aws:iam::111122223333:role/x' }, 'an unknown field');
  bad({ metadata_server: 'yes' }, 'metadata_server not a boolean');
});

t.test('from a profile and [oidc] to the provider, and the rules across profiles', async (t) => {
  const g = await fakeGoogle(t);
  const ajv = new Ajv({ useDefaults: true, strict: true });
  ajv.addKeyword({ keyword: 'expect', schemaType: 'string' });
  const profile: Record<string, unknown> = {
    type: 'gcp-wif',
    audience: AUDIENCE,
    service_account: SA,
    sts_endpoint: g.base,
    iamcredentials_endpoint: g.base,
  };
  t.ok(ajv.compile(GcpWifProfile)(profile));
  const opts = gcpWifProviderOptions('gcp', profile as GcpWifProfileConfig, { issuer: ISSUER, token_lifetime_seconds: 300 }, signer, {
    maxAttempts: 1,
  });
  t.equal(opts.subject, SUBJECT, 'the default subject');
  t.equal(opts.lifetimeSeconds, 3600);
  t.same(opts.scopes, [CLOUD_PLATFORM]);
  const token = await new GcpWifProvider(opts).fetch();
  t.equal(token.accessToken, SA_TOKEN, 'a provider built from the profile works');
  await verifyJwt(t, new URLSearchParams(g.sts()[0]?.body).get('subject_token') ?? '');
  t.throws(() => gcpWifProviderOptions('gcp', profile as GcpWifProfileConfig, undefined, signer), {
    code: 'InvalidConfiguration',
    message: /profile gcp: gcp-wif needs an \[oidc\] table/,
  });

  const aws = ['prod', { type: 'aws-oidc' }] as const;
  t.same(checkGcpProfiles([aws, ['gcp', { type: 'gcp-wif', metadata_server: true }]], { oidc: true }), []);
  t.same(checkGcpProfiles([aws], { oidc: false }), [], 'no gcp profile, no rule');
  t.match(checkGcpProfiles([['gcp', { type: 'gcp-wif' }]], { oidc: false }), [/profiles gcp: gcp-wif needs an \[oidc\] table/]);
  t.match(
    checkGcpProfiles(
      [
        ['a', { type: 'gcp-wif', metadata_server: true }],
        ['b', { type: 'gcp-wif', metadata_server: false }],
        ['c', { type: 'gcp-wif', metadata_server: true }],
      ],
      { oidc: true },
    ),
    [/^profiles a, c all set metadata_server = true; at most one/],
  );
});
