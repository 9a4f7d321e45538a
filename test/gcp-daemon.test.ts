/**
 * Google Cloud end to end: the daemon holds a gcp-wif profile beside an AWS one, exchanges the device
 * JWT at the emulator's Google STS (which verifies it with jose against the issuer's JWKS) and
 * impersonates a service account; Google's own clients then get emulator-issued tokens through both
 * local conventions, and credport auth prints them.
 */
import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import t from 'tap';
import { defaultSubject, mintIdentityToken } from '../daemon/identity/jwt.js';
import { freePort, runCliAsync } from './helpers/cli.js';
import { EmptyHome } from './helpers/clients.js';
import {
  debianGoogleAuth,
  googleAuthLibrary,
  googleEnv,
  metadataEnv,
  runNodeGoogleAuth,
  runPythonGoogleAuth,
} from './helpers/google-clients.js';
import {
  GCP_AUDIENCE as AUDIENCE,
  GCP_PROJECT_NUMBER as PROJECT_NUMBER,
  GCP_SA as SA,
  gcpWifProfile,
  trustStackIssuer,
} from './helpers/gcp-pool.js';
import { createUser, curlAs, rootForUsers } from './helpers/second-user.js';
import { startStack } from './helpers/stack.js';
import { needs } from './helpers/tools.js';

const home = new EmptyHome();
t.teardown(() => home.remove());

// A fixed port: the CLI finds an in-process daemon (which writes no runtime file) at its configured address.
const stack = await startStack({
  daemon: { listen: `127.0.0.1:${await freePort()}` },
  profiles: {
    default: {},
    gcp: gcpWifProfile({ metadata_server: true }),
  },
  beforeStart: trustStackIssuer,
});
t.teardown(() => stack.close());
const base = stack.daemon!.url;
const hostPort = base.replace('http://', '');

async function gcpState(): Promise<string | undefined> {
  const h = (await (await fetch(`${base}/health`)).json()) as { profiles: Record<string, { state: string }> };
  return h.profiles.gcp?.state;
}

t.test('the daemon holds an emulator-issued token for the service account', async (t) => {
  for (let i = 0; i < 50 && (await gcpState()) !== 'ok'; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(await gcpState(), 'ok', 'the gcp profile is ok beside the AWS one');
  t.equal(stack.emulator.stats.gcpStsCalls >= 1, true, 'STS was asked');
  const r = await runCliAsync(['auth', '--profile', 'gcp', '--format', 'json', '--config', stack.configFile]);
  t.equal(r.status, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { access_token: string; expires_at: string };
  const info = stack.emulator.verifyGoogleAccessToken(body.access_token);
  t.equal(info?.kind, 'service-account', 'the token is the impersonated one');
  t.equal(info?.kind === 'service-account' ? info.email : undefined, SA);
  t.ok(Date.parse(body.expires_at) > Date.now(), 'not expired');
  const bare = await runCliAsync(['auth', '--profile', 'gcp', '--format', 'token', '--config', stack.configFile]);
  t.equal(bare.stdout, `${body.access_token}\n`, '--format token prints the token alone');
  const wrong = await runCliAsync(['auth', '--profile', 'gcp', '--format', 'credential_process', '--config', stack.configFile]);
  t.equal(wrong.status, 2, 'an AWS format for a Google profile is a usage error');
  t.match(wrong.stderr, /json, token, executable/);
});

t.test('the AWS endpoints do not serve the Google profile', async (t) => {
  const r = await fetch(`${base}/v1/credentials/gcp`, { headers: { authorization: stack.token() } });
  t.equal(r.status, 404);
  const aws = await fetch(`${base}/v1/credentials`, { headers: { authorization: stack.token() } });
  t.equal(aws.status, 200, 'the AWS default profile still is');
});

t.test('executable format: a device JWT for the provider, in Google executable-response shape', async (t) => {
  const r = await runCliAsync(['auth', '--profile', 'gcp', '--format', 'executable', '--config', stack.configFile]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, '', 'nothing on stderr (Google clients mix it into what they parse)');
  const o = JSON.parse(r.stdout) as { version: number; success: boolean; token_type: string; id_token: string; expiration_time: number };
  t.same([o.version, o.success, o.token_type], [1, true, 'urn:ietf:params:oauth:token-type:jwt']);
  const jwks = createLocalJWKSet(JSON.parse(readFileSync(`${stack.dir}/issuer/.well-known/jwks.json`, 'utf8')) as { keys: [] });
  const { payload } = await jwtVerify(o.id_token, jwks, { issuer: stack.emulator.issuerBaseUrl, audience: AUDIENCE });
  t.equal(payload.sub, defaultSubject(stack.signer), 'signed by the device key, for the device subject');
  t.ok((payload.iat ?? Infinity) <= Date.now() / 1000, 'iat is not in the future');
  t.equal(o.expiration_time, decodeJwt(o.id_token).exp, 'expiration_time is the JWT exp');
});

t.test('google-auth-library through the external_account file credport env writes', needs(googleAuthLibrary), async (t) => {
  const r = await runCliAsync(['env', '--profile', 'gcp', '--config', stack.configFile]);
  t.equal(r.status, 0, r.stderr);
  const file = /export GOOGLE_APPLICATION_CREDENTIALS='([^']+)'/.exec(r.stdout)?.[1];
  t.ok(file, r.stdout);
  t.match(r.stdout, /export GOOGLE_CLOUD_PROJECT='my-project'/);
  t.equal(statSync(file!).mode & 0o777, 0o600, 'the credential file is 0600 (it holds the subject-token secret)');
  const before = stack.emulator.stats.gcpStsCalls;
  const got = await runNodeGoogleAuth(googleEnv(home, { GOOGLE_APPLICATION_CREDENTIALS: file!, GOOGLE_CLOUD_PROJECT: 'my-project' }));
  t.notOk(got.error, got.error ?? '');
  t.equal(got.projectId, 'my-project');
  const info = stack.emulator.verifyGoogleAccessToken(got.accessToken ?? '');
  t.equal(info?.kind === 'service-account' ? info.email : undefined, SA, 'the library exchanged our subject token and impersonated itself');
  t.ok(stack.emulator.stats.gcpStsCalls > before, 'the library called STS itself');
});

t.test('google-auth-library through the metadata server gets the daemon token', needs(googleAuthLibrary), async (t) => {
  const mine = JSON.parse((await runCliAsync(['auth', '--profile', 'gcp', '--config', stack.configFile])).stdout) as {
    access_token: string;
  };
  const got = await runNodeGoogleAuth(googleEnv(home, { ...metadataEnv(hostPort), GOOGLE_CLOUD_PROJECT: 'my-project' }));
  t.notOk(got.error, got.error ?? '');
  t.equal(got.accessToken, mine.access_token, 'the pre-refreshed token the daemon holds');
  t.equal(stack.emulator.verifyGoogleAccessToken(got.accessToken ?? '')?.kind, 'service-account');
});

t.test('python3-google-auth 1.5.1 through the metadata server', needs(debianGoogleAuth), async (t) => {
  const got = await runPythonGoogleAuth(googleEnv(home, metadataEnv(hostPort)), 'compute');
  t.notOk(got.error, got.error ?? '');
  const info = stack.emulator.verifyGoogleAccessToken(got.accessToken ?? '');
  t.equal(info?.kind === 'service-account' ? info.email : undefined, SA, 'an emulator-issued service-account token');
});

t.test('the audit log names Google handouts without the token', async (t) => {
  const audit = readFileSync(`${stack.dir}/audit.log`, 'utf8');
  t.match(audit, /"endpoint":"gcp-metadata".*"accessKeyId":"sha256:[0-9a-f]{16}"/, 'a metadata handout, by hash prefix');
  t.match(audit, /"endpoint":"gcp-subject-token"/, 'the subject tokens handed to the library');
  t.notMatch(audit, /ya29|eyJ/, 'no token or JWT in the audit log');
});

t.test('another local user gets no Google token by any route, even with the secrets', needs(rootForUsers), async (t) => {
  const u = createUser();
  t.teardown(() => u.remove());
  const secretFile = `${stack.dir}/gcp-subject-token.secret`;
  t.equal(statSync(secretFile).mode & 0o777, 0o600, 'the subject-token secret is 0600');
  const secret = readFileSync(secretFile, 'utf8');
  const before = stack.emulator.stats.gcpStsCalls;
  const attempts: Array<[string, string[]]> = [
    ['metadata token', ['-H', 'Metadata-Flavor: Google', `${base}/computeMetadata/v1/instance/service-accounts/default/token`]],
    ['metadata probe', ['-H', 'Metadata-Flavor: Google', `${base}/computeMetadata/v1/instance`]],
    ['subject token with the secret', ['-H', `X-Credport-Subject-Token-Secret: ${secret}`, `${base}/gcp/v1/profiles/gcp/subject-token`]],
    ['access token with the daemon token', ['-H', `Authorization: ${stack.token()}`, `${base}/gcp/v1/profiles/gcp/access-token`]],
  ];
  for (const [what, args] of attempts) {
    const r = await curlAs(u, args);
    t.equal(r.status, 403, `${what}: 403`);
    t.notMatch(r.body, /gcpemu|eyJ|access_token/, `${what}: nothing leaks`);
  }
  t.equal(stack.emulator.stats.gcpStsCalls, before, 'nothing was exchanged on their behalf');
});

t.test('the metadata server refuses requests without Metadata-Flavor or through a proxy', async (t) => {
  const path = `${base}/computeMetadata/v1/instance/service-accounts/default/token`;
  t.equal((await fetch(path)).status, 403, 'no Metadata-Flavor: 403');
  t.equal(
    (await fetch(path, { headers: { 'metadata-flavor': 'Google', 'x-forwarded-for': '10.0.0.1' } })).status,
    403,
    'X-Forwarded-For: 403',
  );
  t.equal(
    (await fetch(path, { headers: { 'metadata-flavor': 'Google', 'x-real-ip': '10.0.0.1' } })).status,
    403,
    'X-Real-IP: 403, as on the IMDS token PUT',
  );
  const ok = await fetch(path, { headers: { 'metadata-flavor': 'Google' } });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('metadata-flavor'), 'Google');
});

t.test('the JWKS credport oidc export writes works uploaded to a Google provider (jwksJson)', async (t) => {
  const out = `${stack.dir}/exported`;
  const r = await runCliAsync(['oidc', 'export', out, '--config', stack.configFile]);
  t.equal(r.status, 0, r.stderr);
  const jwksJson = readFileSync(`${out}/.well-known/jwks.json`, 'utf8');
  // An issuer URL nothing answers at: the keys can only come from the upload.
  const issuer = 'https://issuer.invalid';
  const uploaded = stack.emulator.createWorkloadIdentityPoolProvider({
    projectNumber: PROJECT_NUMBER,
    poolId: 'uploaded',
    providerId: 'jwks',
    issuerUri: issuer,
    jwksJson,
  });
  const { token } = await mintIdentityToken(stack.signer, {
    issuer,
    subject: defaultSubject(stack.signer),
    audience: uploaded.resourceName,
    lifetimeSeconds: 300,
  });
  const res = await fetch(`${stack.emulator.gcpStsEndpoint}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: uploaded.resourceName,
      scope: 'https://www.googleapis.com/auth/cloud-platform',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token: token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    }),
  });
  t.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { access_token: string };
  t.equal(stack.emulator.verifyGoogleAccessToken(body.access_token)?.kind, 'federated', 'exchanged against the uploaded keys');
});
