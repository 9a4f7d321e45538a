// The Google half of the emulator is only worth having if it refuses what Google refuses. These tests
// drive STS and IAM Credentials over real HTTP with JWTs signed by jose and by credport's own minting
// code (a file key, as the daemon will use), and check each rule by the refusal Google would give.

import t from 'tap';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { EmulatorConfigError, startEmulator } from '../emulator/index.js';
import type { WorkloadIdentityPoolProvider } from '../emulator/index.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { defaultSubject, mintIdentityToken } from '../daemon/identity/jwt.js';
import { publish } from './helpers/issuer-files.js';

const PROJECT = '123456789';
const SUB = 'device:alpha';
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const DEPLOYER = 'deployer@my-project.iam.gserviceaccount.com';
const FLEET = 'fleet@my-project.iam.gserviceaccount.com';
const UNBOUND = 'unbound@my-project.iam.gserviceaccount.com';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const base = await mkdtemp(join(tmpdir(), 'credport-emulator-gcp-'));
const issuerDir = join(base, 'issuer');
await mkdir(issuerDir, { recursive: true });

// A fixed clock: the tests move it instead of sleeping.
let clock = Date.now();
const nowSeconds = (): number => Math.floor(clock / 1000);

const emulator = await startEmulator({ issuerDir, now: () => clock });
const issuer = `${emulator.issuerBaseUrl}/device`;

interface SigningKey {
  privateKey: CryptoKey;
  jwk: JWK;
  kid: string;
  alg: 'ES256' | 'RS256';
}
async function makeKey(alg: 'ES256' | 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, jwk: { ...jwk, kid, use: 'sig', alg }, kid, alg };
}
const deviceKey = await makeKey('ES256');
const rsaKey = await makeKey('RS256');
const strangerKey = await makeKey('ES256');

// credport's own file key, signing through the daemon's minting code.
const fileSigner = FileKeySigner.create(join(base, 'device.pem'));
const fileJwk: JWK = { ...fileSigner.publicJwk(), kid: fileSigner.thumbprint, use: 'sig', alg: 'ES256' };

await publish(join(issuerDir, 'device'), issuer, [deviceKey.jwk, fileJwk]);
// Registered, but nothing is published there.
const silentIssuer = `${emulator.issuerBaseUrl}/silent`;
// Its discovery document claims to be another issuer.
const liarIssuer = `${emulator.issuerBaseUrl}/liar`;
await publish(join(issuerDir, 'liar'), 'https://issuer.example.com', [deviceKey.jwk]);

const devices = emulator.createWorkloadIdentityPoolProvider({
  projectNumber: PROJECT,
  poolId: 'devices',
  providerId: 'credport',
  issuerUri: issuer,
});
// Keys uploaded to the provider; the issuer's host does not exist, so discovery could never succeed.
const uploaded = emulator.createWorkloadIdentityPoolProvider({
  projectNumber: Number(PROJECT),
  poolId: 'uploaded',
  providerId: 'jwks',
  issuerUri: 'https://issuer.invalid',
  jwksJson: JSON.stringify({ keys: [deviceKey.jwk, rsaKey.jwk] }),
});
const gated = emulator.createWorkloadIdentityPoolProvider({
  projectNumber: PROJECT,
  poolId: 'gated',
  providerId: 'credport',
  issuerUri: issuer,
  attributeCondition: { allowedSubjects: ['device:allowed'] },
});
const custom = emulator.createWorkloadIdentityPoolProvider({
  projectNumber: PROJECT,
  poolId: 'custom',
  providerId: 'credport',
  issuerUri: issuer,
  allowedAudiences: ['credport-devices'],
});
const silent = emulator.createWorkloadIdentityPoolProvider({
  projectNumber: PROJECT,
  poolId: 'silent',
  providerId: 'credport',
  issuerUri: silentIssuer,
});
const liar = emulator.createWorkloadIdentityPoolProvider({
  projectNumber: PROJECT,
  poolId: 'liar',
  providerId: 'credport',
  issuerUri: liarIssuer,
});

emulator.bindServiceAccount(DEPLOYER, devices.principal(SUB));
emulator.bindServiceAccount(FLEET, uploaded.principalSet);

t.teardown(async () => {
  await emulator.close();
  await rm(base, { recursive: true, force: true });
});

interface TokenOptions {
  key?: SigningKey;
  alg?: string;
  /** null: no kid in the header. */
  kid?: string | null;
  claims?: JWTPayload;
  omit?: string[];
  provider?: WorkloadIdentityPoolProvider;
}
async function mintToken(options: TokenOptions = {}): Promise<string> {
  const key = options.key ?? deviceKey;
  const provider = options.provider ?? devices;
  const claims: JWTPayload = {
    iss: provider.issuerUri,
    sub: SUB,
    aud: provider.resourceName,
    iat: nowSeconds(),
    exp: nowSeconds() + 300,
    ...options.claims,
  };
  for (const name of options.omit ?? []) delete claims[name];
  const header: { alg: string; typ: string; kid?: string } = { alg: options.alg ?? key.alg, typ: 'JWT' };
  if (options.kid !== null) header.kid = options.kid ?? key.kid;
  return new SignJWT(claims).setProtectedHeader(header).sign(key.privateKey);
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}
async function reply(response: Response): Promise<Reply> {
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { unparsed: text };
  }
  return { status: response.status, body, headers: response.headers };
}

const tokenUrl = `${emulator.gcpStsEndpoint}/v1/token`;
const impersonationUrl = (email: string): string =>
  `${emulator.iamCredentialsEndpoint}/v1/projects/-/serviceAccounts/${email}:generateAccessToken`;

/** A form-encoded STS exchange, as google-auth-library sends it; `params` override the defaults. */
async function exchange(subjectToken: string, params: Record<string, string | undefined> = {}): Promise<Reply> {
  const fields: Record<string, string | undefined> = {
    grant_type: GRANT,
    audience: devices.resourceName,
    scope: CLOUD_PLATFORM,
    requested_token_type: ACCESS_TOKEN_TYPE,
    subject_token: subjectToken,
    subject_token_type: JWT_TYPE,
    ...params,
  };
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) form.set(name, value);
  return reply(
    await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }),
  );
}

async function federatedToken(options: TokenOptions = {}, params: Record<string, string> = {}): Promise<string> {
  const r = await exchange(await mintToken(options), { audience: (options.provider ?? devices).resourceName, ...params });
  if (r.status !== 200 || typeof r.body.access_token !== 'string') throw new Error(`exchange failed: ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}

async function impersonate(email: string, bearer: string | undefined, body: unknown = { scope: [CLOUD_PLATFORM] }): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  return reply(
    await fetch(impersonationUrl(email), { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) }),
  );
}

/** What an STS refusal looks like on the wire. */
function oauthError(error: string, description: RegExp = /./): { status: number; body: { error: string; error_description: RegExp } } {
  return { status: 400, body: { error, error_description: description } };
}
function apiError(
  code: number,
  status: string,
  message: RegExp = /./,
): { status: number; body: { error: { code: number; status: string; message: RegExp } } } {
  return { status: code, body: { error: { code, status, message } } };
}

t.test('a token verified by OIDC discovery buys a federated token the emulator recorded', async (t) => {
  const before = emulator.stats;
  const r = await exchange(await mintToken());
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /^application\/json/);
  t.match(r.body, { issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: 3600 });
  t.same(Object.keys(r.body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'token_type'], 'only the fields Google sends');
  const token = String(r.body.access_token);
  t.notMatch(token, /^eyJ/, 'opaque, not a JWT');
  t.ok(token.length >= 64, 'long enough to be unguessable');
  const info = emulator.verifyGoogleAccessToken(token);
  t.match(info, {
    kind: 'federated',
    principal: `principal://iam.googleapis.com/projects/${PROJECT}/locations/global/workloadIdentityPools/devices/subject/${SUB}`,
    subject: SUB,
    provider: `//iam.googleapis.com/projects/${PROJECT}/locations/global/workloadIdentityPools/devices/providers/credport`,
    scopes: [CLOUD_PLATFORM],
    expired: false,
  });
  t.equal(info?.expiresAt.getTime(), (nowSeconds() + 3600) * 1000, 'expires an hour from now');
  t.equal(emulator.verifyGoogleAccessToken(`${token}x`), undefined, 'a token it did not issue is unknown');
  t.equal(emulator.stats.gcpStsCalls - before.gcpStsCalls, 1);
  t.equal(emulator.stats.gcpStsSuccesses - before.gcpStsSuccesses, 1);
  t.equal(emulator.stats.stsCalls, before.stsCalls, 'the AWS STS counters are untouched');
});

t.test("credport's own minting with a file key is accepted, as the daemon will send it", async (t) => {
  const subject = defaultSubject(fileSigner);
  const { token } = await mintIdentityToken(fileSigner, {
    issuer,
    subject,
    audience: devices.resourceName,
    lifetimeSeconds: 300,
    now: () => clock,
  });
  const r = await exchange(token);
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.match(emulator.verifyGoogleAccessToken(String(r.body.access_token)), {
    kind: 'federated',
    subject,
    principal: devices.principal(subject),
  });

  // The same key, a day-old iat: what a daemon that never re-mints would send.
  const stale = await mintIdentityToken(fileSigner, {
    issuer,
    subject,
    audience: devices.resourceName,
    lifetimeSeconds: 200_000,
    now: () => clock - 86_401_000,
  });
  t.match(await exchange(stale.token), oauthError('invalid_grant', /more than 24 hours ago/));
});

t.test('JSON bodies are accepted too, with snake_case or camelCase keys', async (t) => {
  const post = async (body: unknown): Promise<Reply> =>
    reply(
      await fetch(tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
  const snake = await post({
    grant_type: GRANT,
    audience: devices.resourceName,
    scope: CLOUD_PLATFORM,
    requested_token_type: ACCESS_TOKEN_TYPE,
    subject_token: await mintToken(),
    subject_token_type: JWT_TYPE,
  });
  t.equal(snake.status, 200, JSON.stringify(snake.body));
  const camel = await post({
    grantType: GRANT,
    audience: devices.resourceName,
    scope: CLOUD_PLATFORM,
    requestedTokenType: ACCESS_TOKEN_TYPE,
    subjectToken: await mintToken(),
    subjectTokenType: 'urn:ietf:params:oauth:token-type:id_token',
  });
  t.equal(camel.status, 200, JSON.stringify(camel.body));
  t.match(await post({ grantType: GRANT, audience: 7 }), oauthError('invalid_request', /"audience" must be a string/));
  t.match(
    await reply(await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' })),
    oauthError('invalid_request', /not valid JSON/),
  );
});

t.test('an uploaded jwksJson is used without contacting the issuer, RS256 included', async (t) => {
  for (const key of [deviceKey, rsaKey]) {
    const r = await exchange(await mintToken({ key, provider: uploaded }), { audience: uploaded.resourceName });
    t.equal(r.status, 200, `${key.alg}: ${JSON.stringify(r.body)}`);
  }
  // The file key is published by discovery, not uploaded: the provider does not know it.
  const { token } = await mintIdentityToken(fileSigner, {
    issuer: uploaded.issuerUri,
    subject: SUB,
    audience: uploaded.resourceName,
    lifetimeSeconds: 300,
    now: () => clock,
  });
  t.match(
    await exchange(token, { audience: uploaded.resourceName }),
    oauthError('invalid_grant', /No key with kid .* uploaded to the provider/),
  );
});

t.test('the audience: the resource name with or without https:, or the allowed audiences instead', async (t) => {
  t.equal((await exchange(await mintToken({ claims: { aud: `https:${devices.resourceName}` } }))).status, 200, 'https: prefix accepted');
  t.equal(
    (await exchange(await mintToken({ claims: { aud: ['someone-else', devices.resourceName] } }))).status,
    200,
    'one of several audiences',
  );
  t.match(
    await exchange(await mintToken({ claims: { aud: 'https://sts.googleapis.com' } })),
    oauthError('invalid_grant', /aud .* is not an audience the provider accepts/),
  );
  t.match(await exchange(await mintToken({ claims: { aud: `http:${devices.resourceName}` } })), oauthError('invalid_grant', /aud/));
  t.match(await exchange(await mintToken({ omit: ['aud'] })), oauthError('invalid_grant', /no aud claim/));

  const customAud = { audience: custom.resourceName };
  t.equal(
    (await exchange(await mintToken({ provider: custom, claims: { aud: 'credport-devices' } }), customAud)).status,
    200,
    'an allowed audience',
  );
  t.match(
    await exchange(await mintToken({ provider: custom }), customAud),
    oauthError('invalid_grant', /aud/),
    'allowedAudiences replace the default',
  );
});

t.test('the header: kid required and known, ES256 or RS256, signature by that key', async (t) => {
  t.match(await exchange(await mintToken({ kid: null })), oauthError('invalid_grant', /no kid/));
  t.match(
    await exchange(await mintToken({ kid: 'not-a-published-kid' })),
    oauthError('invalid_grant', /No key with kid not-a-published-kid/),
  );
  t.match(
    await exchange(await mintToken({ key: strangerKey, kid: deviceKey.kid })),
    oauthError('invalid_grant', /signature does not verify/),
  );
  t.match(
    await exchange(await mintToken({ key: rsaKey })),
    oauthError('invalid_grant', /No key with kid/),
    'a key the issuer never published',
  );
  const hmac = await new SignJWT({ iss: issuer, sub: SUB, aud: devices.resourceName, iat: nowSeconds(), exp: nowSeconds() + 300 })
    .setProtectedHeader({ alg: 'HS256', kid: deviceKey.kid })
    .sign(new Uint8Array(32));
  t.match(await exchange(hmac), oauthError('invalid_grant', /HS256 is not supported/));
  t.match(await exchange('not-a-jwt'), oauthError('invalid_grant', /not a JWT/));
});

t.test('iss must equal the provider issuer exactly; discovery failures are invalid_grant', async (t) => {
  t.match(
    await exchange(await mintToken({ claims: { iss: 'https://elsewhere.example.com' } })),
    oauthError('invalid_grant', /iss does not match/),
  );
  t.match(
    await exchange(await mintToken({ claims: { iss: `${issuer}/` } })),
    oauthError('invalid_grant', /iss does not match/),
    'a trailing slash counts',
  );
  t.match(await exchange(await mintToken({ omit: ['iss'] })), oauthError('invalid_grant', /iss does not match/));
  t.match(
    await exchange(await mintToken({ provider: silent }), { audience: silent.resourceName }),
    oauthError('invalid_grant', /Could not get the keys of the credential's issuer: .*HTTP 404/),
  );
  t.match(
    await exchange(await mintToken({ provider: liar }), { audience: liar.resourceName }),
    oauthError('invalid_grant', /names issuer https:\/\/issuer\.example\.com/),
  );
});

t.test('time: iat not in the future beyond 60 s, at most 24 h old; exp in the future', async (t) => {
  const now = nowSeconds();
  t.equal((await exchange(await mintToken({ claims: { iat: now + 30 } }))).status, 200, 'iat 30 s ahead is within the skew');
  t.match(
    await exchange(await mintToken({ claims: { iat: now + 120, exp: now + 600 } })),
    oauthError('invalid_grant', /issued in the future/),
  );
  t.match(
    await exchange(await mintToken({ claims: { iat: now - 86_401, exp: now + 300 } })),
    oauthError('invalid_grant', /more than 24 hours ago/),
  );
  t.equal((await exchange(await mintToken({ claims: { iat: now - 86_000, exp: now + 300 } }))).status, 200, 'just under a day old is fine');
  t.match(await exchange(await mintToken({ claims: { iat: now - 600, exp: now - 120 } })), oauthError('invalid_grant', /expired/));
  t.match(await exchange(await mintToken({ omit: ['exp'] })), oauthError('invalid_grant', /no exp claim/));
  t.match(await exchange(await mintToken({ omit: ['iat'] })), oauthError('invalid_grant', /no iat claim/));
  t.match(await exchange(await mintToken({ claims: { nbf: now + 600 } })), oauthError('invalid_grant', /not valid yet/));
});

t.test('google.subject: present and at most 127 bytes', async (t) => {
  t.equal((await exchange(await mintToken({ claims: { sub: 'd'.repeat(127) } }))).status, 200, '127 bytes');
  t.match(
    await exchange(await mintToken({ claims: { sub: 'd'.repeat(128) } })),
    oauthError('invalid_request', /128 bytes; the limit is 127/),
  );
  // Bytes, not characters: 64 two-byte characters are 128 bytes.
  t.match(await exchange(await mintToken({ claims: { sub: 'é'.repeat(64) } })), oauthError('invalid_request', /128 bytes/));
  t.match(await exchange(await mintToken({ omit: ['sub'] })), oauthError('invalid_grant', /no sub claim/));
});

t.test('the attribute condition admits only the listed subjects', async (t) => {
  const params = { audience: gated.resourceName };
  t.equal((await exchange(await mintToken({ provider: gated, claims: { sub: 'device:allowed' } }), params)).status, 200);
  t.match(await exchange(await mintToken({ provider: gated }), params), oauthError('unauthorized_client', /attribute condition/));
});

t.test('request parameters are checked as Google checks them', async (t) => {
  const token = await mintToken();
  t.match(await exchange(token, { grant_type: 'client_credentials' }), oauthError('unsupported_grant_type', /grant_type/));
  t.match(await exchange(token, { grant_type: undefined }), oauthError('unsupported_grant_type'));
  t.match(await exchange(token, { requested_token_type: JWT_TYPE }), oauthError('invalid_request', /requested_token_type/));
  t.match(
    await exchange(token, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }),
    oauthError('invalid_request', /subject_token_type/),
  );
  t.match(await exchange(token, { scope: undefined }), oauthError('invalid_request', /"scope" parameter is required/));
  t.match(await exchange(token, { scope: '  ' }), oauthError('invalid_request', /scope/));
  t.match(await exchange('', {}), oauthError('invalid_request', /subject_token/));
  t.match(await exchange(token, { audience: undefined }), oauthError('invalid_request', /audience/));
  t.match(
    await exchange(token, { audience: 'projects/123/locations/global/workloadIdentityPools/devices/providers/credport' }),
    oauthError('invalid_request', /full resource name/),
  );
  t.match(
    await exchange(token, { audience: devices.resourceName.replace('credport', 'unknown') }),
    oauthError('invalid_target', /names no workload identity pool provider/),
  );
  t.match(await exchange(token, { options: 'not json' }), oauthError('invalid_request', /options/));
  t.equal((await exchange(token, { options: JSON.stringify({ userProject: 'my-project' }) })).status, 200, 'valid options are accepted');

  const get = await reply(await fetch(tokenUrl));
  t.match(get, { status: 405, body: { error: 'invalid_request' } });
  const text = await reply(await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }));
  t.match(text, oauthError('invalid_request', /x-www-form-urlencoded or application\/json/));
  t.match(await reply(await fetch(`${emulator.gcpStsEndpoint}/v1/other`, { method: 'POST' })), {
    status: 404,
    body: { error: 'invalid_request' },
  });
});

t.test('impersonation through a principal binding returns a service-account token', async (t) => {
  const federated = await federatedToken();
  const r = await impersonate(DEPLOYER, federated);
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.same(Object.keys(r.body).sort(), ['accessToken', 'expireTime']);
  t.match(r.body.expireTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, 'RFC 3339, whole seconds, UTC');
  t.equal(Date.parse(String(r.body.expireTime)), (nowSeconds() + 3600) * 1000, 'default lifetime one hour');
  t.match(emulator.verifyGoogleAccessToken(String(r.body.accessToken)), {
    kind: 'service-account',
    email: DEPLOYER,
    impersonatedBy: devices.principal(SUB),
    scopes: [CLOUD_PLATFORM],
    expired: false,
  });

  const short = await impersonate(DEPLOYER, federated, {
    scope: [CLOUD_PLATFORM, 'https://www.googleapis.com/auth/devstorage.read_only'],
    lifetime: '1800s',
  });
  t.equal(Date.parse(String(short.body.expireTime)), (nowSeconds() + 1800) * 1000, 'the requested lifetime');
  t.match(emulator.verifyGoogleAccessToken(String(short.body.accessToken))?.scopes, [
    CLOUD_PLATFORM,
    'https://www.googleapis.com/auth/devstorage.read_only',
  ]);

  // The email may arrive percent-encoded, as some clients build the URL.
  const encoded = await reply(
    await fetch(impersonationUrl(encodeURIComponent(DEPLOYER)), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${federated}` },
      body: JSON.stringify({ scope: [CLOUD_PLATFORM] }),
    }),
  );
  t.equal(encoded.status, 200, JSON.stringify(encoded.body));
});

t.test('impersonation through the pool principalSet admits every subject of that pool only', async (t) => {
  for (const sub of ['device:one', 'device:two']) {
    const federated = await federatedToken({ provider: uploaded, claims: { sub } });
    const r = await impersonate(FLEET, federated);
    t.equal(r.status, 200, `${sub}: ${JSON.stringify(r.body)}`);
    t.match(emulator.verifyGoogleAccessToken(String(r.body.accessToken)), { email: FLEET, impersonatedBy: uploaded.principal(sub) });
  }
  // Another pool's identity, even with the same subject, is not in that set.
  t.match(await impersonate(FLEET, await federatedToken()), apiError(403, 'PERMISSION_DENIED', /iam\.serviceAccounts\.getAccessToken/));
});

t.test('impersonation is refused without a binding, whoever asks', async (t) => {
  const federated = await federatedToken();
  t.match(await impersonate(UNBOUND, federated), apiError(403, 'PERMISSION_DENIED', /unbound@my-project/));
  t.match(
    await impersonate('nobody@nowhere.iam.gserviceaccount.com', federated),
    apiError(403, 'PERMISSION_DENIED'),
    'an unknown account answers alike',
  );
  t.match(
    await impersonate(DEPLOYER, await federatedToken({ claims: { sub: 'device:beta' } })),
    apiError(403, 'PERMISSION_DENIED'),
    'another subject of the same pool',
  );
  const narrow = await federatedToken({}, { scope: 'https://www.googleapis.com/auth/devstorage.read_only' });
  t.match(await impersonate(DEPLOYER, narrow), apiError(403, 'PERMISSION_DENIED', /scopes are insufficient/));
  const saToken = String((await impersonate(DEPLOYER, federated)).body.accessToken);
  t.match(await impersonate(DEPLOYER, saToken), apiError(403, 'PERMISSION_DENIED', /only federated identities/));
});

t.test('the bearer token must be present, issued here and unexpired', async (t) => {
  const r = await impersonate(DEPLOYER, undefined);
  t.match(r, apiError(401, 'UNAUTHENTICATED'));
  t.match(r.headers.get('www-authenticate'), /^Bearer/);
  t.match(await impersonate(DEPLOYER, 'gcpemu-fed.forged'), apiError(401, 'UNAUTHENTICATED', /not one this service issued/));
  const federated = await federatedToken();
  const started = clock;
  clock += 3600_000;
  try {
    t.match(await impersonate(DEPLOYER, federated), apiError(401, 'UNAUTHENTICATED', /expired/));
    t.equal(emulator.verifyGoogleAccessToken(federated)?.expired, true);
  } finally {
    clock = started;
  }
  t.equal((await impersonate(DEPLOYER, federated)).status, 200, 'the same token, back before its expiry');
});

t.test('the request body: scope required, lifetime at most 3600s, JSON only', async (t) => {
  const federated = await federatedToken();
  t.match(
    await impersonate(DEPLOYER, federated, { scope: [CLOUD_PLATFORM], lifetime: '3601s' }),
    apiError(400, 'INVALID_ARGUMENT', /at most 3600s/),
  );
  t.match(
    await impersonate(DEPLOYER, federated, { scope: [CLOUD_PLATFORM], lifetime: '3600.5s' }),
    apiError(400, 'INVALID_ARGUMENT', /at most 3600s/),
  );
  t.equal((await impersonate(DEPLOYER, federated, { scope: [CLOUD_PLATFORM], lifetime: '3600s' })).status, 200, 'exactly 3600s');
  t.match(
    await impersonate(DEPLOYER, federated, { scope: [CLOUD_PLATFORM], lifetime: 3600 }),
    apiError(400, 'INVALID_ARGUMENT', /duration/),
  );
  t.match(
    await impersonate(DEPLOYER, federated, { scope: [CLOUD_PLATFORM], lifetime: '0s' }),
    apiError(400, 'INVALID_ARGUMENT', /at least 1s/),
  );
  t.match(await impersonate(DEPLOYER, federated, { lifetime: '600s' }), apiError(400, 'INVALID_ARGUMENT', /scope/));
  t.match(await impersonate(DEPLOYER, federated, { scope: [] }), apiError(400, 'INVALID_ARGUMENT', /scope/));
  t.match(
    await impersonate(DEPLOYER, federated, { scope: [CLOUD_PLATFORM], extra: 1 }),
    apiError(400, 'INVALID_ARGUMENT', /unknown field "extra"/),
  );
  t.match(
    await impersonate(DEPLOYER, federated, { scope: [CLOUD_PLATFORM], delegates: ['projects/-/serviceAccounts/x@y'] }),
    apiError(400, 'INVALID_ARGUMENT', /delegates/),
  );
  t.match(await impersonate(DEPLOYER, federated, '{"scope": ['), apiError(400, 'INVALID_ARGUMENT', /not JSON/));
  t.match(await impersonate(DEPLOYER, federated, '[]'), apiError(400, 'INVALID_ARGUMENT', /JSON object/));
  t.match(
    await reply(await fetch(`${emulator.iamCredentialsEndpoint}/v1/projects/-/serviceAccounts/${DEPLOYER}:signJwt`, { method: 'POST' })),
    apiError(404, 'NOT_FOUND'),
  );
  t.match(
    await reply(
      await fetch(`${emulator.iamCredentialsEndpoint}/v1/projects/Bad_Project/serviceAccounts/${DEPLOYER}:generateAccessToken`, {
        method: 'POST',
      }),
    ),
    apiError(400, 'INVALID_ARGUMENT', /project/),
  );
});

t.test('each service answers only on its own prefix', async (t) => {
  const federated = await federatedToken();
  const wrongHost = await fetch(`${emulator.gcpStsEndpoint}/v1/projects/-/serviceAccounts/${DEPLOYER}:generateAccessToken`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${federated}` },
    body: JSON.stringify({ scope: [CLOUD_PLATFORM] }),
  });
  t.equal(wrongHost.status, 404, 'generateAccessToken sent to the STS endpoint');
  await wrongHost.body?.cancel();
  const wrongSts = await fetch(`${emulator.iamCredentialsEndpoint}/v1/token`, { method: 'POST' });
  t.equal(wrongSts.status, 404, 'a token exchange sent to the IAM Credentials endpoint');
  await wrongSts.body?.cancel();
});

t.test('bounded and junk bodies are refused, and the emulator keeps serving', async (t) => {
  const big = 'a'.repeat(64 * 1024 + 1);
  const stsBig = await reply(
    await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `subject_token=${big}`,
    }),
  );
  t.match(stsBig, { status: 413, body: { error: 'invalid_request', error_description: /exceeds 65536 bytes/ } });
  const federated = await federatedToken();
  const iamBig = await impersonate(DEPLOYER, federated, `{"scope":["${big}"]}`);
  t.match(iamBig, apiError(413, 'INVALID_ARGUMENT', /exceeds 65536 bytes/));
  const junk = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256));
  for (const type of ['application/x-www-form-urlencoded', 'application/json']) {
    const r = await reply(await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': type }, body: junk }));
    t.equal(r.status, 400, `${type}: junk is a 400`);
    t.equal(typeof r.body.error, 'string');
  }
  t.match(await impersonate(DEPLOYER, federated, junk.toString('latin1')), apiError(400, 'INVALID_ARGUMENT'));
  t.match(
    await reply(
      await fetch(`${emulator.iamCredentialsEndpoint}/v1/projects/-/serviceAccounts/%E0%A4%A:generateAccessToken`, { method: 'POST' }),
    ),
    apiError(400, 'INVALID_ARGUMENT', /percent-encoded/),
  );
  t.equal((await exchange(await mintToken())).status, 200, 'still serving');
});

t.test('setCredentialLifetime and faults apply to the Google services too', async (t) => {
  emulator.setCredentialLifetime(120);
  try {
    const r = await exchange(await mintToken());
    t.equal(r.body.expires_in, 120);
    const sa = await impersonate(DEPLOYER, String(r.body.access_token));
    t.equal(Date.parse(String(sa.body.expireTime)), (nowSeconds() + 120) * 1000);
  } finally {
    emulator.setCredentialLifetime(null);
  }

  emulator.setFault({ kind: 'error', status: 400, code: 'invalid_grant', message: 'injected' }, { times: 1, service: 'gcp-sts' });
  t.match(await exchange(await mintToken()), oauthError('invalid_grant', /^injected$/));
  const federated = await federatedToken();
  emulator.setFault({ kind: 'error', status: 503, code: 'UNAVAILABLE', message: 'injected' }, { times: 1, service: 'iamcredentials' });
  t.match(await impersonate(DEPLOYER, federated), apiError(503, 'UNAVAILABLE', /^injected$/));
  emulator.setFault({ kind: 'malformed' }, { times: 1, service: 'gcp-sts' });
  const malformed = await fetch(tokenUrl, { method: 'POST' });
  t.match(malformed.headers.get('content-type'), /^text\/html/);
  await malformed.body?.cancel();
  emulator.setFault({ kind: 'truncated' }, { times: 1, service: 'iamcredentials' });
  const truncated = await fetch(impersonationUrl(DEPLOYER), { method: 'POST' });
  t.equal(truncated.status, 200);
  const cut = await truncated.text();
  t.throws(() => JSON.parse(cut) as unknown, 'a 200 whose JSON stops half-way');
  t.equal((await exchange(await mintToken())).status, 200, 'faults with times: 1 are spent');
  t.throws(() => emulator.setFault({ kind: 'unavailable' }, { service: 'gcp' as never }), EmulatorConfigError);
});

t.test('setup mistakes fail at once', async (t) => {
  const spec = { projectNumber: PROJECT, poolId: 'setup', providerId: 'credport', issuerUri: issuer };
  const bad = (override: Record<string, unknown>, message: RegExp): void => {
    t.throws(() => emulator.createWorkloadIdentityPoolProvider({ ...spec, ...override } as never), {
      name: 'EmulatorConfigError',
      message,
    });
  };
  bad({ projectNumber: 'my-project' }, /project number/);
  bad({ poolId: 'Devices' }, /poolId/);
  bad({ providerId: 'gcp-reserved' }, /providerId/);
  bad({ issuerUri: 'http://issuer.example.com' }, /https/);
  bad({ jwksJson: '{not json' }, /not valid JSON/);
  bad({ jwksJson: { nokeys: true } }, /JSON Web Key Set/);
  bad({ jwksJson: { keys: [{ ...deviceKey.jwk, d: 'secret' }] } }, /public keys only/);
  bad({ allowedAudiences: [] }, /allowedAudiences/);
  bad({ attributeCondition: { allowedSubjects: 'device:alpha' } }, /allowedSubjects/);
  t.throws(() => emulator.createWorkloadIdentityPoolProvider({ ...spec, poolId: 'devices' }), { code: 'EntityAlreadyExists' });
  t.throws(() => emulator.bindServiceAccount('not-an-email', devices.principalSet), /service account/);
  t.throws(() => emulator.bindServiceAccount(DEPLOYER, `serviceAccount:${FLEET}`), /member must be/);
  t.throws(() => emulator.bindServiceAccount(DEPLOYER, devices.principalSet.replace('/*', '/attribute.repo/x')), /models only/);
  t.throws(() => emulator.bindServiceAccount(DEPLOYER, devices.principal('')), /member must be/);
});
