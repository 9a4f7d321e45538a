/**
 * The Google endpoints at route level, proven with Google's real clients: a
 * bare fastify app (the daemon's router options) serves the plugins with an
 * in-test GcpServing whose tokens are random values the test knows, and
 * google-auth-library and python3-google-auth, run as child processes, must end
 * up with exactly those values. A stand-in for STS and IAM Credentials on
 * loopback records what google-auth-library sends after it fetched the subject
 * token from our URL. End-to-end runs against the daemon and the emulator are
 * elsewhere.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { executableFailure, executableResponse } from '../daemon/clouds/gcp/endpoints/executable-response.js';
import { externalAccountJson, writeExternalAccountFile, JWT_TOKEN_TYPE } from '../daemon/clouds/gcp/endpoints/external-account.js';
import { CLOUD_PLATFORM_SCOPE, metadataRoutes, uncoveredScopes } from '../daemon/clouds/gcp/endpoints/metadata-routes.js';
import type { GcpProfileInfo, GcpServing } from '../daemon/clouds/gcp/endpoints/serving.js';
import { SUBJECT_TOKEN_SECRET_HEADER, subjectTokenPath, subjectTokenRoutes } from '../daemon/clouds/gcp/endpoints/subject-token-routes.js';
import { hostAllowlist, registerGuards, type Binding } from '../daemon/server/guards.js';
import { EmptyHome } from './helpers/clients.js';
import {
  debianGoogleAuth,
  gcloudPresent,
  googleAuthLibrary,
  googleEnv,
  metadataEnv,
  runGcloud,
  runNodeGoogleAuth,
  runPythonGoogleAuth,
} from './helpers/google-clients.js';
import { needs } from './helpers/tools.js';

const rand = (what: string) => `${what}-${randomBytes(24).toString('base64url')}`;
const PROJECT = 'credport-test-project';
const SA = `deployer@${PROJECT}.iam.gserviceaccount.com`;
const STORAGE_RO = 'https://www.googleapis.com/auth/devstorage.read_only';
const AUDIENCE = '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/devices/providers/credport';

/** The in-test daemon: two profiles, tokens the test knows, every subject token minted recorded. */
class TestServing implements GcpServing {
  readonly secret = rand('secret');
  readonly accessTokens = new Map([
    ['gcp', rand('ya29.access')],
    ['narrow', rand('ya29.narrow')],
  ]);
  readonly profiles = new Map<string, GcpProfileInfo>([
    ['gcp', { projectId: PROJECT, projectNumber: '123456789', serviceAccount: SA, scopes: [CLOUD_PLATFORM_SCOPE] }],
    ['narrow', { scopes: [STORAGE_RO] }],
  ]);
  readonly minted: string[] = [];
  metadata: string | undefined = 'gcp';
  metadataProfile() {
    return this.metadata;
  }
  async accessToken(profile: string) {
    const token = this.accessTokens.get(profile);
    const info = this.profiles.get(profile);
    if (token === undefined || info === undefined)
      return { ok: false as const, status: 404, body: { error: 'not_found', error_description: `no profile ${profile}` } };
    return { ok: true as const, value: { accessToken: token, expiration: new Date(Date.now() + 3_000_000), scopes: info.scopes } };
  }
  async subjectToken(profile: string) {
    if (!this.profiles.has(profile))
      return { ok: false as const, status: 404, body: { error: 'not_found', error_description: `no profile ${profile}` } };
    // JWT-shaped: three base64url parts, as a device-signed token is.
    const token = `${rand('eyJhbGciOiJFUzI1NiJ9')}.${randomBytes(48).toString('base64url')}.${randomBytes(64).toString('base64url')}`;
    this.minted.push(token);
    return { ok: true as const, value: { token, expiration: new Date(Date.now() + 600_000) } };
  }
  info(profile: string) {
    return this.profiles.get(profile);
  }
  subjectTokenSecret() {
    return this.secret;
  }
}

interface Served {
  app: FastifyInstance;
  serving: TestServing;
  base: string;
  hostPort: string;
  /** Every request as `METHOD path?query`, in order. */
  requests: string[];
  /** Routes registered without the `credentials` access class (must stay empty). */
  unguarded: string[];
}

async function serve(): Promise<Served> {
  const serving = new TestServing();
  // The daemon's router options (daemon/server/app.ts): trailing and doubled slashes ignored.
  const app = Fastify({
    routerOptions: { maxParamLength: 100, caseSensitive: true, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
  });
  const requests: string[] = [];
  const unguarded: string[] = [];
  // The daemon's request guards (loopback peer, Host, no browser headers): every client must pass them too.
  let binding: Binding = { port: 0, addresses: ['127.0.0.1'] };
  registerGuards(
    app,
    hostAllowlist(() => binding),
  );
  app.addHook('onRoute', (r) => {
    if ((r.config as { access?: string } | undefined)?.access !== 'credentials') unguarded.push(`${String(r.method)} ${r.url}`);
  });
  app.addHook('onRequest', (req, _reply, done) => {
    requests.push(`${req.method} ${req.url}`);
    done();
  });
  await app.register(subjectTokenRoutes, { serving });
  await app.register(metadataRoutes, { serving });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  binding = { port, addresses: ['127.0.0.1'] };
  return { app, serving, base: `http://127.0.0.1:${port}`, hostPort: `127.0.0.1:${port}`, requests, unguarded };
}

interface Exchange {
  path: string;
  form?: URLSearchParams;
  authorization?: string;
  body?: unknown;
}

/** STS and IAM Credentials as google-auth-library calls them, on loopback, answering in Google's shapes. */
async function standIn(): Promise<{ server: Server; url: string; seen: Exchange[]; stsToken: string; saToken: string }> {
  const seen: Exchange[] = [];
  const stsToken = rand('ya29.sts');
  const saToken = rand('ya29.impersonated');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '').split('?')[0] ?? '';
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST' && path === '/v1/token') {
        seen.push({ path, form: new URLSearchParams(text) });
        res.end(
          JSON.stringify({
            access_token: stsToken,
            issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
            token_type: 'Bearer',
            expires_in: 3599,
          }),
        );
        return;
      }
      if (req.method === 'POST' && path === `/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`) {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        seen.push({ path, authorization: req.headers.authorization, body });
        res.end(JSON.stringify({ accessToken: saToken, expireTime: new Date(Date.now() + 3_000_000).toISOString() }));
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { code: 404, message: 'not found', status: 'NOT_FOUND' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, stsToken, saToken };
}

const made: string[] = [];
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), 'credport-gcp-endpoints-'));
  made.push(d);
  return d;
};
const home = new EmptyHome();
t.teardown(() => {
  home.remove();
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

t.test('every route the plugins add carries the credentials access class', async (t) => {
  const s = await serve();
  t.teardown(() => s.app.close());
  t.same(s.unguarded, [], 'no route escapes the peer gate (HEAD twins included)');
});

t.test('google-auth-library via the metadata server gets the profile token and project', needs(googleAuthLibrary), async (t) => {
  const s = await serve();
  t.teardown(() => s.app.close());
  const env = googleEnv(home, metadataEnv(s.hostPort));

  const plain = await runNodeGoogleAuth(env, { email: true });
  t.equal(plain.error, undefined, 'no error');
  t.equal(plain.accessToken, s.serving.accessTokens.get('gcp'), 'the access token is the one the profile holds');
  t.equal(plain.projectId, PROJECT, 'the project id comes from the metadata server');
  t.equal(plain.email, SA, 'getCredentials() names the impersonated service account');
  t.ok(s.requests.includes('GET /computeMetadata/v1/instance'), 'the client probed /computeMetadata/v1/instance');
  t.ok(s.requests.includes('GET /computeMetadata/v1/instance/service-accounts/default/token'), 'asked for the default token');
  t.ok(s.requests.includes('GET /computeMetadata/v1/project/project-id'), 'asked for the project id');
  t.comment(`google-auth-library requested: ${[...new Set(s.requests)].join(', ')}`);

  s.requests.length = 0;
  const scoped = await runNodeGoogleAuth(env, { scopes: [CLOUD_PLATFORM_SCOPE, STORAGE_RO] });
  t.equal(scoped.accessToken, s.serving.accessTokens.get('gcp'), 'scopes cloud-platform covers are served the same token');
  t.ok(
    s.requests.some((r) => r.startsWith('GET /computeMetadata/v1/instance/service-accounts/default/token?scopes=')),
    'the scopes went in ?scopes=',
  );

  // A profile without cloud-platform: a scope it lacks is refused rather than handed a token that cannot work.
  s.serving.metadata = 'narrow';
  const uncovered = await runNodeGoogleAuth(env, { scopes: [CLOUD_PLATFORM_SCOPE] });
  t.equal(uncovered.accessToken, undefined, 'no token for a scope the profile lacks');
  t.match(
    uncovered.error ?? '',
    /Forbidden error.*invalid_scope.*does not cover https:\/\/www.googleapis.com\/auth\/cloud-platform/s,
    'the client reports the 403 and why',
  );
  const covered = await runNodeGoogleAuth(googleEnv(home, { ...metadataEnv(s.hostPort), GOOGLE_CLOUD_PROJECT: 'from-env' }), {
    scopes: [STORAGE_RO],
  });
  t.equal(covered.accessToken, s.serving.accessTokens.get('narrow'), 'a scope the profile has is served');
  t.equal(covered.projectId, 'from-env', 'GOOGLE_CLOUD_PROJECT wins over the metadata server');
});

t.test('with no metadata profile the server is absent to google-auth-library', needs(googleAuthLibrary), async (t) => {
  const s = await serve();
  t.teardown(() => s.app.close());
  s.serving.metadata = undefined;
  const r = await runNodeGoogleAuth(googleEnv(home, metadataEnv(s.hostPort)));
  t.equal(r.accessToken, undefined, 'no token');
  t.match(r.error ?? '', /Could not load the default credentials/, 'the client finds no credentials at all');
});

t.test('python3-google-auth 1.5.1 via the metadata server gets the profile token and project', needs(debianGoogleAuth), async (t) => {
  const s = await serve();
  t.teardown(() => s.app.close());
  const env = googleEnv(home, metadataEnv(s.hostPort));

  const adc = await runPythonGoogleAuth(env, 'default');
  t.equal(adc.error, undefined, 'no error');
  t.equal(adc.accessToken, s.serving.accessTokens.get('gcp'), 'google.auth.default(): the access token is the one the profile holds');
  t.equal(adc.projectId, PROJECT, 'google.auth.default(): the project id comes from the metadata server');
  t.equal(adc.email, SA, 'the credentials settled on the service account email');
  t.ok(s.requests.includes('GET /'), 'the client pinged GET /');
  t.ok(
    s.requests.includes('GET /computeMetadata/v1/instance/service-accounts/default/?recursive=true'),
    'read the account info recursively',
  );
  t.ok(s.requests.includes(`GET /computeMetadata/v1/instance/service-accounts/${SA}/token`), 'asked for the token under the email');
  t.comment(`python3-google-auth requested: ${[...new Set(s.requests)].join(', ')}`);

  const compute = await runPythonGoogleAuth(env, 'compute');
  t.equal(compute.accessToken, s.serving.accessTokens.get('gcp'), 'compute_engine.Credentials().refresh(): the same token');

  // A profile without a service account: the account is `default` under both names.
  s.serving.metadata = 'narrow';
  const narrow = await runPythonGoogleAuth(env, 'default');
  t.equal(narrow.accessToken, s.serving.accessTokens.get('narrow'), 'a profile without a service account is served too');
  t.equal(narrow.email, 'default', 'its account is called default');
  t.equal(narrow.projectId, null, 'no project id: the client carries on without one');
});

// gcloud is not a Debian package, so the test set-up cannot install it: where it is present it runs;
// elsewhere the test is not registered at all (a skip would count as a failure in CI).
if (gcloudPresent)
  t.test('gcloud via the metadata server gets the profile token, project and account', async (t) => {
    const s = await serve();
    t.teardown(() => s.app.close());
    const r = await runGcloud(googleEnv(home, metadataEnv(s.hostPort)));
    t.equal(r.error, undefined, 'no error');
    t.equal(r.accessToken, s.serving.accessTokens.get('gcp'), 'the access token is the one the profile holds');
    t.equal(r.projectId, PROJECT, 'the project');
    t.equal(r.email, SA, 'the account is the service account');
    t.ok(s.requests.includes('GET /computeMetadata/v1/project/numeric-project-id'), 'gcloud decides it is on GCE from numeric-project-id');
    t.comment(`gcloud requested: ${[...new Set(s.requests)].join(', ')}`);

    // Without a project number gcloud does not believe it is on GCE (a fresh config dir: gcloud caches the answer there).
    s.serving.profiles.set('gcp', { projectId: PROJECT, serviceAccount: SA, scopes: [CLOUD_PLATFORM_SCOPE] });
    const other = new EmptyHome();
    t.teardown(() => other.remove());
    const without = await runGcloud(googleEnv(other, metadataEnv(s.hostPort)));
    t.equal(without.accessToken, undefined, 'no project number: gcloud finds no credentials');
  });

t.test('google-auth-library with an external_account file fetches the subject token from our URL', needs(googleAuthLibrary), async (t) => {
  const s = await serve();
  const sts = await standIn();
  t.teardown(async () => {
    await s.app.close();
    await new Promise<void>((resolve) => sts.server.close(() => resolve()));
  });
  const d = dir();

  const direct = join(d, 'direct.json');
  writeExternalAccountFile(
    direct,
    externalAccountJson({ daemonUrl: s.base, profile: 'gcp', audience: AUDIENCE, secret: s.serving.secret, stsEndpoint: sts.url }),
  );
  const r = await runNodeGoogleAuth(googleEnv(home, { GOOGLE_APPLICATION_CREDENTIALS: direct, GOOGLE_CLOUD_PROJECT: PROJECT }));
  t.equal(r.error, undefined, 'no error');
  t.equal(r.accessToken, sts.stsToken, "the client's token is the one STS answered");
  t.equal(r.projectId, PROJECT, 'the project is GOOGLE_CLOUD_PROJECT (no Resource Manager call offline)');
  t.equal(s.serving.minted.length, 1, 'one subject token was minted');
  const form = sts.seen[0]?.form;
  t.equal(form?.get('subject_token'), s.serving.minted[0], 'STS received the minted subject token intact');
  t.equal(form?.get('subject_token_type'), JWT_TOKEN_TYPE, 'as a jwt');
  t.equal(form?.get('audience'), AUDIENCE, 'for the provider audience');
  t.equal(form?.get('grant_type'), 'urn:ietf:params:oauth:grant-type:token-exchange', 'in a token exchange');
  t.ok(s.requests.includes(`GET ${subjectTokenPath('gcp')}`), 'the subject token came from the subject-token route');

  // With a service account: STS, then generateAccessToken with the STS token as bearer.
  sts.seen.length = 0;
  const impersonating = join(d, 'impersonating.json');
  writeExternalAccountFile(
    impersonating,
    externalAccountJson({
      daemonUrl: s.base,
      profile: 'gcp',
      audience: AUDIENCE,
      secret: s.serving.secret,
      serviceAccount: SA,
      stsEndpoint: sts.url,
      iamcredentialsEndpoint: sts.url,
      lifetimeSeconds: 1800,
    }),
  );
  const imp = await runNodeGoogleAuth(googleEnv(home, { GOOGLE_APPLICATION_CREDENTIALS: impersonating, GOOGLE_CLOUD_PROJECT: PROJECT }));
  t.equal(imp.error, undefined, 'no error');
  t.equal(imp.accessToken, sts.saToken, "the client's token is the impersonated one");
  t.equal(sts.seen[0]?.form?.get('subject_token'), s.serving.minted[1], 'STS received the second minted subject token');
  t.equal(sts.seen[1]?.authorization, `Bearer ${sts.stsToken}`, 'generateAccessToken was called with the STS token');
  t.match(sts.seen[1]?.body, { lifetime: '1800s' }, 'with the lifetime from the file');

  // The wrong secret in the file: the client fails and STS is never called.
  sts.seen.length = 0;
  const wrong = join(d, 'wrong.json');
  writeExternalAccountFile(
    wrong,
    externalAccountJson({ daemonUrl: s.base, profile: 'gcp', audience: AUDIENCE, secret: 'not-the-secret', stsEndpoint: sts.url }),
  );
  const refused = await runNodeGoogleAuth(googleEnv(home, { GOOGLE_APPLICATION_CREDENTIALS: wrong, GOOGLE_CLOUD_PROJECT: PROJECT }));
  t.equal(refused.accessToken, undefined, 'no token with the wrong secret');
  t.match(refused.error ?? '', /401|unauthorized/i, 'the client reports the refusal');
  t.equal(sts.seen.length, 0, 'STS never saw a request');
});

t.test('the executable response has the documented format', async (t) => {
  const exp = new Date(Date.UTC(2030, 0, 1, 0, 0, 0, 999));
  t.strictSame(executableResponse('eyJ.x.y', exp), {
    version: 1,
    success: true,
    token_type: 'urn:ietf:params:oauth:token-type:jwt',
    id_token: 'eyJ.x.y',
    expiration_time: 1893456000,
  });
  t.strictSame(executableFailure('NoProfile', 'no such profile'), {
    version: 1,
    success: false,
    code: 'NoProfile',
    message: 'no such profile',
  });
});

t.test('google-auth-library runs an executable that prints the executable response', needs(googleAuthLibrary), async (t) => {
  const sts = await standIn();
  t.teardown(() => new Promise<void>((resolve) => sts.server.close(() => resolve())));
  const d = dir();
  const token = `${rand('eyJhbGciOiJFUzI1NiJ9')}.${rand('payload')}.${rand('sig')}`;
  const script = join(d, 'exec.mjs');
  const module = new URL('../daemon/clouds/gcp/endpoints/executable-response.js', import.meta.url).href;
  writeFileSync(
    script,
    `import { executableResponse } from ${JSON.stringify(module)};\nprocess.stdout.write(JSON.stringify(executableResponse(process.env.CREDPORT_TEST_SUBJECT, new Date(Date.now() + 600000))));\n`,
  );
  const file = join(d, 'exec.json');
  writeFileSync(
    file,
    JSON.stringify({
      type: 'external_account',
      audience: AUDIENCE,
      subject_token_type: JWT_TOKEN_TYPE,
      token_url: `${sts.url}/v1/token`,
      credential_source: { executable: { command: `${process.execPath} ${script}`, timeout_millis: 10_000 } },
    }),
    { mode: 0o600 },
  );
  const r = await runNodeGoogleAuth(
    googleEnv(home, {
      GOOGLE_APPLICATION_CREDENTIALS: file,
      GOOGLE_CLOUD_PROJECT: PROJECT,
      GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: '1',
      CREDPORT_TEST_SUBJECT: token,
    }),
  );
  t.equal(r.error, undefined, 'no error');
  t.equal(r.accessToken, sts.stsToken, 'the client exchanged the token');
  t.equal(sts.seen[0]?.form?.get('subject_token'), token, 'the id_token reached STS intact');
});

t.test('the subject-token route', async (t) => {
  const s = await serve();
  t.teardown(() => s.app.close());
  const url = `${s.base}${subjectTokenPath('gcp')}`;

  const ok = await fetch(url, { headers: { [SUBJECT_TOKEN_SECRET_HEADER]: s.serving.secret } });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('cache-control'), 'no-store', 'never cached');
  const body = (await ok.json()) as Record<string, unknown>;
  t.equal(body.id_token, s.serving.minted[0], 'the minted token, under id_token');
  t.type(body.expiration_time, 'number', 'expiration_time in epoch seconds');
  t.ok(Math.abs((body.expiration_time as number) - (Date.now() + 600_000) / 1000) < 120, 'the expiration the profile gave');

  for (const [what, headers] of [
    ['no secret', {}],
    ['an empty secret', { [SUBJECT_TOKEN_SECRET_HEADER]: '' }],
    ['a wrong secret', { [SUBJECT_TOKEN_SECRET_HEADER]: `${s.serving.secret}x` }],
    ['the secret in another header', { authorization: `Bearer ${s.serving.secret}` }],
  ] as const) {
    const r = await fetch(url, { headers });
    t.equal(r.status, 401, `${what}: 401`);
    const b = (await r.json()) as Record<string, unknown>;
    t.equal(b.error, 'unauthorized', `${what}: Google-shaped error`);
    t.type(b.error_description, 'string');
    t.notOk(JSON.stringify(b).includes(s.serving.secret), `${what}: the secret is not echoed`);
  }
  t.equal(s.serving.minted.length, 1, 'a refused request mints nothing');

  const unknown = await fetch(`${s.base}${subjectTokenPath('nope')}`, { headers: { [SUBJECT_TOKEN_SECRET_HEADER]: s.serving.secret } });
  t.equal(unknown.status, 404, "the serving's refusal passes through");
  t.match(await unknown.json(), { error: 'not_found' });
});

t.test('the metadata server refuses what GCE refuses and names its flavor', async (t) => {
  const s = await serve();
  t.teardown(() => s.app.close());
  const token = `${s.base}/computeMetadata/v1/instance/service-accounts/default/token`;
  const flavor = { 'metadata-flavor': 'Google' };

  const ok = await fetch(token, { headers: flavor });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('metadata-flavor'), 'Google');
  t.equal(ok.headers.get('content-type'), 'application/json', 'exactly application/json (Python 1.x compares it)');
  const b = (await ok.json()) as Record<string, unknown>;
  t.equal(b.access_token, s.serving.accessTokens.get('gcp'));
  t.equal(b.token_type, 'Bearer');
  t.ok(
    Number.isInteger(b.expires_in) && (b.expires_in as number) > 2900 && (b.expires_in as number) <= 3000,
    'expires_in is the seconds left',
  );

  for (const [what, headers] of [
    ['no Metadata-Flavor', {}],
    ['Metadata-Flavor: google (wrong case)', { 'metadata-flavor': 'google' }],
    ['X-Forwarded-For', { ...flavor, 'x-forwarded-for': '10.0.0.1' }],
    ['Forwarded', { ...flavor, forwarded: 'for=10.0.0.1' }],
  ] as const) {
    const r = await fetch(token, { headers });
    t.equal(r.status, 403, `${what}: 403`);
    t.equal(r.headers.get('metadata-flavor'), 'Google', `${what}: the refusal names its flavor`);
    t.notOk((await r.text()).includes(s.serving.accessTokens.get('gcp') ?? '?'), `${what}: no token in the body`);
  }
  t.match(await (await fetch(`${s.base}/`, {})).text(), /Missing Metadata-Flavor/, 'the probe without the header is told why');

  t.equal(
    await (await fetch(`${s.base}/computeMetadata/v1/project/numeric-project-id`, { headers: flavor })).text(),
    '123456789',
    'the project number, when known',
  );
  s.serving.profiles.set('narrow', { scopes: [STORAGE_RO] });
  s.serving.metadata = 'narrow';
  t.equal(
    (await fetch(`${s.base}/computeMetadata/v1/project/numeric-project-id`, { headers: flavor })).status,
    404,
    'no project number: 404',
  );
  t.equal((await fetch(`${s.base}/computeMetadata/v1/project/project-id`, { headers: flavor })).status, 404, 'no project id: 404');
  s.serving.metadata = 'gcp';
  for (const path of [
    '/computeMetadata/v1/instance/attributes/',
    '/computeMetadata/v1/instance/service-accounts/default/identity?audience=x',
    '/computeMetadata/v1/instance/service-accounts/other@x.iam.gserviceaccount.com/token',
    '/computeMetadata/v1beta1/instance',
  ]) {
    const r = await fetch(`${s.base}${path}`, { headers: flavor });
    t.equal(r.status, 404, `${path}: 404`);
    t.equal(r.headers.get('metadata-flavor'), 'Google', `${path}: with the flavor`);
    t.match(await r.text(), /Error 404 \(Not Found\)/, `${path}: Google's 404 page`);
  }

  const email = await fetch(`${s.base}/computeMetadata/v1/instance/service-accounts/${SA}/email`, { headers: flavor });
  t.equal(await email.text(), SA, 'the account is also reachable under its email');
  const scopes = await fetch(`${s.base}/computeMetadata/v1/instance/service-accounts/default/scopes`, { headers: flavor });
  t.equal(await scopes.text(), `${CLOUD_PLATFORM_SCOPE}\n`, 'scopes, one a line');
  const universe = await fetch(`${s.base}/computeMetadata/v1/universe/universe-domain`, { headers: flavor });
  t.equal(await universe.text(), 'googleapis.com');

  const tooMany = await fetch(`${token}?scopes=${Array.from({ length: 51 }, (_, i) => `s${i}`).join(',')}`, { headers: flavor });
  t.equal(tooMany.status, 400, 'more than 50 scopes: 400');

  s.serving.metadata = undefined;
  const gone = await fetch(token, { headers: flavor });
  t.equal(gone.status, 404, 'no metadata profile: 404');
});

t.test('uncoveredScopes', async (t) => {
  t.same(uncoveredScopes([STORAGE_RO, 'x'], [CLOUD_PLATFORM_SCOPE]), [], 'cloud-platform covers any scope asked');
  t.same(uncoveredScopes([STORAGE_RO], [STORAGE_RO]), []);
  t.same(uncoveredScopes([CLOUD_PLATFORM_SCOPE, STORAGE_RO], [STORAGE_RO]), [CLOUD_PLATFORM_SCOPE], 'the missing one is named');
  t.same(uncoveredScopes([], [STORAGE_RO]), [], 'no scopes asked: the profile token');
});

t.test('the external_account file', async (t) => {
  const d = dir();
  const json = externalAccountJson({
    daemonUrl: 'http://127.0.0.1:9911/',
    profile: 'my gcp',
    audience: AUDIENCE,
    secret: 's3cret',
    serviceAccount: SA,
  });
  t.strictSame(json, {
    type: 'external_account',
    audience: AUDIENCE,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: 'https://sts.googleapis.com/v1/token',
    credential_source: {
      url: 'http://127.0.0.1:9911/gcp/v1/profiles/my%20gcp/subject-token',
      headers: { 'x-credport-subject-token-secret': 's3cret' },
      format: { type: 'json', subject_token_field_name: 'id_token' },
    },
    service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`,
  });
  t.throws(
    () => externalAccountJson({ daemonUrl: 'http://127.0.0.1:1', profile: 'p', audience: AUDIENCE, secret: 's', serviceAccount: 'a:b@c' }),
    /email/,
  );
  t.throws(
    () =>
      externalAccountJson({
        daemonUrl: 'http://127.0.0.1:1',
        profile: 'p',
        audience: AUDIENCE,
        secret: 's',
        serviceAccount: `${'a'.repeat(200)}@x.iam.gserviceaccount.com`,
      }),
    /256/,
  );
  t.throws(
    () => externalAccountJson({ daemonUrl: 'http://127.0.0.1:1', profile: 'p', audience: AUDIENCE, secret: 's', stsEndpoint: 'ftp://x' }),
    /http or https/,
  );

  const path = join(d, 'sub', 'gcp.json');
  writeExternalAccountFile(path, json);
  t.equal(statSync(path).mode & 0o777, 0o600, 'written 0600');
  t.equal(statSync(join(d, 'sub')).mode & 0o777, 0o700, 'in a private new directory');
  t.strictSame(JSON.parse(readFileSync(path, 'utf8')), json, 'holds the JSON');
  writeExternalAccountFile(path, { ...json, audience: 'changed' });
  t.equal((JSON.parse(readFileSync(path, 'utf8')) as { audience: string }).audience, 'changed', 'rewritten in place');
  t.equal(statSync(path).mode & 0o777, 0o600, 'still 0600');

  // A symlink in its place is refused, and its target untouched.
  const target = join(d, 'target');
  writeFileSync(target, 'untouched', { mode: 0o600 });
  const link = join(d, 'link.json');
  symlinkSync(target, link);
  t.throws(() => writeExternalAccountFile(link, json), /symbolic link/);
  t.equal(readFileSync(target, 'utf8'), 'untouched', 'the link target is untouched');
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');

  // A file others can read is refused, not silently replaced.
  const open = join(d, 'open.json');
  writeFileSync(open, '{}', { mode: 0o644 });
  chmodSync(open, 0o644);
  t.throws(() => writeExternalAccountFile(open, json), /readable by others/);
  t.equal(readFileSync(open, 'utf8'), '{}', 'left as it was');
});
