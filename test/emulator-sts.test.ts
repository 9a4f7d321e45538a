// The emulator is only worth having if it refuses what STS refuses. These tests drive it with the real
// @aws-sdk/client-sts and tokens signed by jose, and check every refusal by the error the SDK surfaces.

import t from 'tap';
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { AssumeRoleWithWebIdentityCommandOutput } from '@aws-sdk/client-sts';
import { EmulatorConfigError, startEmulator } from '../emulator/index.js';
import { publish } from './helpers/issuer-files.js';

const ACCOUNT = '123456789012';
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/credport-test`;
const WILDCARD_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/fleet/credport-fleet`;
const FOREIGN_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/other-provider`;
const SUB = 'device:alpha';
const AUD = 'sts.amazonaws.com';

// Traversal targets sit beside the served directory, so a successful escape would really find a file.
const base = await mkdtemp(join(tmpdir(), 'credport-emulator-'));
const issuerDir = join(base, 'issuer');
await mkdir(join(issuerDir, '.well-known'), { recursive: true });
await writeFile(join(base, 'package.json'), '{"name":"leaked"}');
await writeFile(join(base, 'secret.json'), '{"secret":"leaked"}');
await symlink(join(base, 'secret.json'), join(issuerDir, 'escape.json'));

// A fixed clock: the tests move it instead of sleeping.
const startClock = Date.now();
let clock = startClock;
const nowSeconds = (): number => Math.floor(clock / 1000);

const emulator = await startEmulator({ issuerDir, now: () => clock });
const issuer = emulator.issuerBaseUrl;
const hostPath = issuer.replace(/^http:\/\//, '');

interface SigningKey {
  privateKey: CryptoKey;
  jwk: JWK;
  kid: string;
}
async function makeKey(alg: 'ES256' | 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, jwk: { ...jwk, kid, use: 'sig', alg }, kid };
}
const deviceKey = await makeKey('ES256');
const rsaKey = await makeKey('RS256');
const strangerKey = await makeKey('ES256');

await publish(issuerDir, issuer, [deviceKey.jwk, rsaKey.jwk]);

// A second issuer whose discovery document claims to be someone else.
const liarIssuer = `${issuer}/liar`;
await publish(join(issuerDir, 'liar'), 'https://issuer.example.com', [deviceKey.jwk]);
// A registered issuer with no documents at all.
const emptyIssuer = `${issuer}/empty`;

// An issuer whose documents the tests rewrite to break in different ways.
const oddIssuer = `${issuer}/odd`;
const oddDir = join(issuerDir, 'odd');
await publish(oddDir, oddIssuer, [deviceKey.jwk]);

// An issuer whose host is down: a port that was free a moment ago.
const deadPort = await new Promise<number>((resolve) => {
  const probe = createServer();
  probe.listen(0, '127.0.0.1', () => {
    const { port } = probe.address() as AddressInfo;
    probe.close(() => resolve(port));
  });
});
const deadIssuer = `http://127.0.0.1:${deadPort}/oidc`;

for (const url of [issuer, liarIssuer, emptyIssuer, oddIssuer, deadIssuer, 'https://elsewhere.example.com']) {
  emulator.createOpenIDConnectProvider({ url, clientIds: [AUD] });
}
emulator.createRole({
  arn: ROLE_ARN,
  trust: { providerUrl: issuer, conditions: { StringEquals: { [`${hostPath}:sub`]: SUB, [`${hostPath}:aud`]: AUD } } },
});
emulator.createRole({
  arn: WILDCARD_ROLE_ARN,
  maxSessionDurationSeconds: 7200,
  trust: { providerUrl: `${issuer}/`, conditions: { StringLike: { [`${hostPath.toUpperCase()}:sub`]: ['device:*', 'laptop-??'] } } },
});
emulator.createRole({ arn: FOREIGN_ROLE_ARN, trust: { providerUrl: 'https://elsewhere.example.com' } });

const client = new STSClient({ endpoint: emulator.stsEndpoint, region: 'us-east-1', maxAttempts: 1 });

t.teardown(async () => {
  client.destroy();
  await emulator.close();
  await rm(base, { recursive: true, force: true });
});

interface TokenOptions {
  key?: SigningKey;
  alg?: 'ES256' | 'RS256';
  kid?: string;
  claims?: JWTPayload;
  omit?: string[];
}
async function mintToken(options: TokenOptions = {}): Promise<string> {
  const key = options.key ?? deviceKey;
  const claims: JWTPayload = { iss: issuer, sub: SUB, aud: AUD, iat: nowSeconds(), exp: nowSeconds() + 300, ...options.claims };
  for (const name of options.omit ?? []) delete claims[name];
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? (key.jwk.alg as 'ES256' | 'RS256'), kid: options.kid ?? key.kid, typ: 'JWT' })
    .sign(key.privateKey);
}

function assume(
  token: string,
  input: { RoleArn?: string; RoleSessionName?: string; DurationSeconds?: number } = {},
): Promise<AssumeRoleWithWebIdentityCommandOutput> {
  return client.send(
    new AssumeRoleWithWebIdentityCommand({
      RoleArn: ROLE_ARN,
      RoleSessionName: 'credport-test',
      WebIdentityToken: token,
      ...input,
    }),
  );
}

/** The shape tap matches a rejected SDK call against. */
interface StsErrorMatch {
  name: string;
  message: RegExp | string;
  $metadata: { httpStatusCode: number };
}
function stsError(name: string, message: RegExp | string, status = 400): StsErrorMatch {
  return { name, message, $metadata: { httpStatusCode: status } };
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
/** Sends a request with the path exactly as given: fetch() would normalise the dot segments away. */
function raw(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(emulator.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const form = (params: Record<string, string>): string => new URLSearchParams(params).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

t.test('a valid token yields credentials that the emulator recorded', async (t) => {
  const before = emulator.stats;
  const out = await assume(await mintToken());
  const creds = out.Credentials;
  if (creds === undefined) throw new Error('no Credentials in the response');
  t.match(creds.AccessKeyId, /^ASIA[A-Z2-7]{16}$/);
  t.ok(creds.Expiration instanceof Date, 'Expiration parsed as a Date');
  t.equal(creds.Expiration?.getTime(), nowSeconds() * 1000 + 3600_000, 'expires DurationSeconds (default 3600) after now');
  t.equal(out.AssumedRoleUser?.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/credport-test/credport-test`);
  t.match(out.AssumedRoleUser?.AssumedRoleId, /^AROA[A-Z2-7]{17}:credport-test$/);
  t.equal(out.SubjectFromWebIdentityToken, SUB);
  t.equal(out.Audience, AUD);
  t.equal(out.Provider, hostPath);

  const issued = emulator.issued(creds.AccessKeyId ?? '');
  t.ok(issued, 'issued() knows the access key');
  t.equal(issued?.secretAccessKey, creds.SecretAccessKey);
  t.equal(issued?.sessionToken, creds.SessionToken);
  t.equal(issued?.expiration.getTime(), creds.Expiration?.getTime());
  t.match(issued, { roleArn: ROLE_ARN, subject: SUB, audience: AUD, sessionName: 'credport-test' });
  t.equal(emulator.issued('ASIAAAAAAAAAAAAAAAAA'), undefined, 'unknown keys are not found');

  const after = emulator.stats;
  t.equal(after.stsCalls, before.stsCalls + 1);
  t.equal(after.stsSuccesses, before.stsSuccesses + 1);
  t.equal(after.stsFailures, before.stsFailures);
});

t.test('DurationSeconds, role maximum and RS256 keys', async (t) => {
  const short = await assume(await mintToken(), { DurationSeconds: 900 });
  t.equal(short.Credentials?.Expiration?.getTime(), nowSeconds() * 1000 + 900_000);

  const rsa = await assume(await mintToken({ key: rsaKey }));
  t.ok(rsa.Credentials?.AccessKeyId, 'an RS256 token from the same JWKS is accepted');

  await t.rejects(
    assume(await mintToken(), { DurationSeconds: 7200 }),
    stsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.'),
  );
  const long = await assume(await mintToken(), { RoleArn: WILDCARD_ROLE_ARN, DurationSeconds: 7200 });
  t.equal(long.Credentials?.Expiration?.getTime(), nowSeconds() * 1000 + 7200_000, 'a role with a higher maximum allows it');
  t.equal(
    long.AssumedRoleUser?.Arn,
    `arn:aws:sts::${ACCOUNT}:assumed-role/credport-fleet/credport-test`,
    'the role path is not part of the session ARN',
  );

  await t.rejects(
    assume(await mintToken(), { DurationSeconds: 899 }),
    stsError('ValidationError', /durationSeconds.*greater than or equal to 900/),
  );
  await t.rejects(assume(await mintToken(), { DurationSeconds: 43201 }), stsError('ValidationError', /less than or equal to 43200/));
});

t.test('signature and key selection', async (t) => {
  await t.rejects(
    assume(await mintToken({ kid: 'no-such-kid' })),
    stsError('InvalidIdentityTokenException', /No key with kid no-such-kid/),
  );
  await t.rejects(
    assume(await mintToken({ key: strangerKey, kid: deviceKey.kid, alg: 'ES256' })),
    stsError('InvalidIdentityTokenException', /signature does not verify/),
  );
  // The RSA key's kid with an ES256 signature: the key exists but cannot verify that algorithm.
  await t.rejects(
    assume(await mintToken({ key: deviceKey, kid: rsaKey.kid })),
    stsError('InvalidIdentityTokenException', /No key with kid/),
  );

  const [h, p] = (await mintToken()).split('.');
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  await t.rejects(
    assume(`${b64({ alg: 'none', kid: deviceKey.kid })}.${p}.`),
    stsError('InvalidIdentityTokenException', /JWT in compact form/),
    'an unsigned token',
  );
  await t.rejects(
    assume(`${b64({ alg: 'HS256', kid: deviceKey.kid })}.${p}.c2ln`),
    stsError('InvalidIdentityTokenException', /Unsupported token signing algorithm HS256/),
  );
  await t.rejects(assume(`${b64({ alg: 'ES256' })}.${p}.c2ln`), stsError('InvalidIdentityTokenException', /no kid/));
  await t.rejects(assume(`${h}.${b64({ sub: SUB, aud: AUD })}.c2ln`), stsError('InvalidIdentityTokenException', /no iss claim/));
});

t.test('issuer, audience and required claims', async (t) => {
  await t.rejects(
    assume(await mintToken({ claims: { iss: 'https://unregistered.example.com' } })),
    stsError('InvalidIdentityTokenException', 'No OpenIDConnect provider found in your account for https://unregistered.example.com'),
  );
  await t.rejects(
    assume(await mintToken({ claims: { aud: 'someone-else' } })),
    stsError('InvalidIdentityTokenException', /Incorrect token audience: "someone-else".*client IDs: sts\.amazonaws\.com/),
  );
  const multi = await assume(await mintToken({ claims: { aud: ['someone-else', AUD] } }));
  t.equal(multi.Audience, AUD, 'an audience list passes when one entry is a client ID');

  for (const claim of ['sub', 'exp', 'iat', 'aud']) {
    await t.rejects(
      assume(await mintToken({ omit: [claim] })),
      stsError('InvalidIdentityTokenException', `The token is missing the required ${claim} claim`),
    );
  }
  await t.rejects(
    assume(await mintToken({ claims: { iss: liarIssuer } })),
    stsError('InvalidIdentityTokenException', /names issuer https:\/\/issuer\.example\.com, not the token's iss/),
  );
});

t.test('time claims follow the injected clock with 60 s of skew', async (t) => {
  const now = nowSeconds();
  await t.rejects(
    assume(await mintToken({ claims: { iat: now - 600, exp: now - 61 } })),
    stsError('ExpiredTokenException', `Token expired: current date/time ${now} must be before the expiration date/time ${now - 61}`),
  );
  t.ok(await assume(await mintToken({ claims: { iat: now - 600, exp: now - 30 } })), 'expired within the skew still passes');

  const token = await mintToken();
  clock += 3600_000;
  try {
    await t.rejects(
      assume(token),
      stsError('ExpiredTokenException', /^Token expired: current date\/time \d+ must be before/),
      'a token goes stale when the emulator clock moves past exp',
    );
  } finally {
    clock = startClock;
  }

  await t.rejects(
    assume(await mintToken({ claims: { nbf: now + 120 } })),
    stsError('InvalidIdentityTokenException', /not valid yet: nbf \d+ is later than the current date\/time/),
  );
  t.ok(await assume(await mintToken({ claims: { nbf: now + 30 } })), 'nbf within the skew passes');
  await t.rejects(
    assume(await mintToken({ claims: { iat: now + 120, exp: now + 600 } })),
    stsError('InvalidIdentityTokenException', /issued in the future/),
  );
});

t.test('trust policy', async (t) => {
  const denied = stsError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity', 403);
  await t.rejects(assume(await mintToken({ claims: { sub: 'device:mallory' } })), denied, 'sub outside StringEquals');
  await t.rejects(assume(await mintToken(), { RoleArn: `arn:aws:iam::${ACCOUNT}:role/no-such-role` }), denied, 'unknown role');
  await t.rejects(assume(await mintToken(), { RoleArn: FOREIGN_ROLE_ARN }), denied, 'role trusts another provider');

  t.ok(await assume(await mintToken({ claims: { sub: 'device:beta' } }), { RoleArn: WILDCARD_ROLE_ARN }), 'StringLike *');
  t.ok(await assume(await mintToken({ claims: { sub: 'laptop-42' } }), { RoleArn: WILDCARD_ROLE_ARN }), 'StringLike ?');
  await t.rejects(assume(await mintToken({ claims: { sub: 'laptop-420' } }), { RoleArn: WILDCARD_ROLE_ARN }), denied, '? is one character');
  await t.rejects(
    assume(await mintToken({ claims: { sub: 'Device:beta' } }), { RoleArn: WILDCARD_ROLE_ARN }),
    denied,
    'values are case-sensitive',
  );
});

t.test('parameter validation', async (t) => {
  const token = await mintToken();
  await t.rejects(
    assume(token, { RoleSessionName: 'has space' }),
    stsError('ValidationError', /'has space' at 'roleSessionName'.*regular expression pattern/),
  );
  await t.rejects(assume(token, { RoleSessionName: 'a' }), stsError('ValidationError', /length greater than or equal to 2/));
  await t.rejects(assume(token, { RoleSessionName: 'x'.repeat(65) }), stsError('ValidationError', /length less than or equal to 64/));
  await t.rejects(assume(token, { RoleSessionName: 'a/b' }), stsError('ValidationError', /roleSessionName/));
  await t.rejects(assume(token, { RoleArn: 'arn:aws:s3:::my-bucket/objects' }), stsError('ValidationError', 'Request ARN is invalid'));

  const missing = await raw('POST', '/', form({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15' }), FORM);
  t.equal(missing.status, 400);
  t.match(missing.body, /<Code>ValidationError<\/Code>/);
  t.match(
    missing.body,
    /3 validation errors detected: Value null at &apos;roleArn&apos;.*&apos;roleSessionName&apos;.*&apos;webIdentityToken&apos;/,
  );

  const unknown = await raw('POST', '/', form({ Action: 'GetFederationToken', Version: '2011-06-15' }), FORM);
  t.equal(unknown.status, 400);
  t.match(unknown.body, /<Code>InvalidAction<\/Code>/);
  const noAction = await raw('POST', '/', form({ Version: '2011-06-15' }), FORM);
  t.match(noAction.body, /<Code>MissingAction<\/Code>/);

  const escaped = await raw(
    'POST',
    '/',
    form({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: ROLE_ARN,
      RoleSessionName: '<b>&"x"</b>',
      WebIdentityToken: token,
    }),
    FORM,
  );
  t.equal(escaped.status, 400);
  t.match(escaped.headers['content-type'], 'text/xml');
  t.match(escaped.body, /^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">\s*<Error>\s*<Type>Sender<\/Type>/);
  t.match(escaped.body, /&lt;b&gt;&amp;&quot;x&quot;&lt;\/b&gt;/);
  t.notMatch(escaped.body, '<b>', 'the echoed session name is escaped');
  t.notMatch(escaped.body, token, 'the token is never echoed');
  t.match(escaped.body, /<\/Error>\s*<RequestId>[0-9a-f-]{36}<\/RequestId>/);

  const big = await raw('POST', '/', `Action=AssumeRoleWithWebIdentity&x=${'a'.repeat(70 * 1024)}`, FORM);
  t.equal(big.status, 413, 'oversized bodies are refused');
  const get = await raw('GET', '/');
  t.equal(get.status, 405);
});

t.test('the success body is shaped like STS', async (t) => {
  const res = await raw(
    'POST',
    '/',
    form({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: ROLE_ARN,
      RoleSessionName: 'raw',
      WebIdentityToken: await mintToken(),
    }),
    FORM,
  );
  t.equal(res.status, 200);
  t.match(res.headers['content-type'], 'text/xml');
  t.match(res.headers['x-amzn-requestid'], /^[0-9a-f-]{36}$/);
  t.match(res.headers.date, new Date(clock).toUTCString(), 'the Date header follows the injected clock');
  const order = [
    '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">',
    '<AssumeRoleWithWebIdentityResult>',
    '<SubjectFromWebIdentityToken>',
    '<Audience>',
    '<AssumedRoleUser>',
    '<Arn>',
    '<AssumedRoleId>',
    '<Credentials>',
    '<SessionToken>',
    '<SecretAccessKey>',
    '<Expiration>',
    '<AccessKeyId>',
    '<Provider>',
    '<ResponseMetadata>',
    '<RequestId>',
  ];
  const positions = order.map((tag) => res.body.indexOf(tag));
  t.notOk(positions.includes(-1), 'every element is present');
  t.same(
    positions,
    [...positions].sort((a, b) => a - b),
    'in the order STS writes them',
  );
  t.match(res.body, /<Expiration>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/Expiration>/);
});

t.test('identity provider failures are IDPCommunicationError', async (t) => {
  await t.rejects(
    assume(await mintToken({ claims: { iss: deadIssuer } })),
    stsError('IDPCommunicationErrorException', /Could not fetch the OpenID configuration from .*: ECONNREFUSED/),
  );
  await t.rejects(assume(await mintToken({ claims: { iss: emptyIssuer } })), stsError('IDPCommunicationErrorException', /HTTP 404/));

  // A JWKS that is not JSON, then one that is not a key set.
  const jwksPath = join(issuerDir, '.well-known', 'jwks.json');
  try {
    await writeFile(jwksPath, 'not json');
    await t.rejects(assume(await mintToken()), stsError('IDPCommunicationErrorException', /JWKS .* is not valid JSON/));
    await writeFile(jwksPath, JSON.stringify({ keys: 'nope' }));
    await t.rejects(assume(await mintToken()), stsError('IDPCommunicationErrorException', /not a valid JSON Web Key Set/));
    // Revocation: a key removed from the JWKS stops working on the next call.
    await writeFile(jwksPath, JSON.stringify({ keys: [rsaKey.jwk] }));
    await t.rejects(assume(await mintToken()), stsError('InvalidIdentityTokenException', /No key with kid/));
  } finally {
    await publish(issuerDir, issuer, [deviceKey.jwk, rsaKey.jwk]);
  }
  t.ok(await assume(await mintToken()), 'restored');
});

t.test('broken issuer documents', async (t) => {
  const discoveryPath = join(oddDir, '.well-known', 'openid-configuration');
  const jwksPath = join(oddDir, '.well-known', 'jwks.json');
  const odd = (): Promise<string> => mintToken({ claims: { iss: oddIssuer } });
  const writeDiscovery = (doc: unknown): Promise<void> => writeFile(discoveryPath, JSON.stringify(doc));

  await writeDiscovery(['not', 'an', 'object']);
  await t.rejects(assume(await odd()), stsError('IDPCommunicationErrorException', /is not a JSON object/));
  await writeDiscovery({ issuer: oddIssuer });
  await t.rejects(assume(await odd()), stsError('IDPCommunicationErrorException', /has no jwks_uri/));
  await writeDiscovery({ issuer: oddIssuer, jwks_uri: 'http://keys.example.com/jwks.json' });
  await t.rejects(
    assume(await odd()),
    stsError('IDPCommunicationErrorException', /must be https \(or http on loopback\)/),
    'a discovery document cannot send the emulator to fetch from the network',
  );
  await writeDiscovery({ issuer: oddIssuer, jwks_uri: `${oddIssuer}/.well-known/jwks.json` });

  // Two keys under one kid is the fleet bug of one device overwriting another's entry; never guess.
  await writeFile(jwksPath, JSON.stringify({ keys: [deviceKey.jwk, { ...strangerKey.jwk, kid: deviceKey.kid }] }));
  await t.rejects(assume(await odd()), stsError('InvalidIdentityTokenException', /More than one key with kid/));
  await writeFile(jwksPath, JSON.stringify({ keys: [deviceKey.jwk, strangerKey.jwk] }));
  const oddHost = oddIssuer.replace(/^http:\/\//, '');
  const oddRole = `arn:aws:iam::${ACCOUNT}:role/odd`;
  emulator.createRole({ arn: oddRole, trust: { providerUrl: oddIssuer, conditions: { StringLike: { [`${oddHost}:sub`]: 'device:*' } } } });
  const stranger = await assume(await mintToken({ key: strangerKey, claims: { iss: oddIssuer, sub: 'device:stranger' } }), {
    RoleArn: oddRole,
  });
  t.equal(stranger.SubjectFromWebIdentityToken, 'device:stranger', 'a fleet JWKS serves every device');
  t.ok(await assume(await odd(), { RoleArn: oddRole }), 'and the first device still works');

  // A condition on a key the request does not carry is false, as in IAM.
  const emailRole = `arn:aws:iam::${ACCOUNT}:role/odd-email`;
  emulator.createRole({
    arn: emailRole,
    trust: { providerUrl: oddIssuer, conditions: { StringEquals: { [`${oddHost}:email`]: 'a@example.com' } } },
  });
  await t.rejects(assume(await odd(), { RoleArn: emailRole }), stsError('AccessDenied', /Not authorized/, 403));

  await t.rejects(
    assume(await mintToken({ claims: JSON.parse('{"iat":"yesterday"}') as JWTPayload })),
    stsError('InvalidIdentityTokenException', /iat claim is invalid/),
  );
});

t.test('faults', async (t) => {
  const token = await mintToken();
  const before = emulator.stats;

  emulator.setFault({ kind: 'unavailable' }, { times: 1 });
  await t.rejects(assume(token), { name: /./ }, 'unavailable');

  emulator.setFault({ kind: 'error', status: 503, code: 'ServiceUnavailable', message: 'Rate exceeded', type: 'Receiver' }, { times: 1 });
  await t.rejects(assume(token), {
    name: 'ServiceUnavailable',
    message: 'Rate exceeded',
    $fault: 'server',
    $metadata: { httpStatusCode: 503 },
  });

  emulator.setFault({ kind: 'error', status: 400, code: 'IDPRejectedClaim', message: 'rejected' }, { times: 1 });
  await t.rejects(assume(token), stsError('IDPRejectedClaimException', 'rejected'), 'modelled codes map to SDK exception classes');

  emulator.setFault({ kind: 'malformed' }, { times: 1 });
  await t.rejects(assume(token), { message: /XML parse error/ }, 'malformed');

  emulator.setFault({ kind: 'truncated' }, { times: 1 });
  await t.rejects(assume(token), { message: /XML parse error/ }, 'truncated');

  emulator.setFault({ kind: 'delay', ms: 40 }, { times: 1 });
  const started = performance.now();
  const delayed = await assume(token);
  t.ok(performance.now() - started >= 35, 'the answer waited');
  t.ok(delayed.Credentials?.AccessKeyId, 'then came normally');

  const after = emulator.stats;
  t.equal(after.stsCalls - before.stsCalls, 6);
  t.equal(after.stsFailures - before.stsFailures, 5);
  t.equal(after.stsSuccesses - before.stsSuccesses, 1);
});

t.test('fault times and clearing', async (t) => {
  const token = await mintToken();
  const throttled = { name: 'Throttling', $metadata: { httpStatusCode: 400 } };
  emulator.setFault({ kind: 'error', status: 400, code: 'Throttling', message: 'Rate exceeded' }, { times: 2 });
  await t.rejects(assume(token), throttled);
  await t.rejects(assume(token), throttled);
  t.ok(await assume(token), 'the third call is answered normally');

  emulator.setFault({ kind: 'error', status: 500, code: 'InternalFailure', message: 'boom' });
  for (let i = 0; i < 3; i++) await t.rejects(assume(token), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } });
  emulator.setFault(null);
  t.ok(await assume(token), 'cleared');

  t.throws(() => emulator.setFault({ kind: 'error', status: 200, code: 'X', message: '' }), EmulatorConfigError);
  t.throws(() => emulator.setFault({ kind: 'unavailable' }, { times: 0 }), EmulatorConfigError);
});

t.test('setCredentialLifetime', async (t) => {
  emulator.setCredentialLifetime(5);
  const shortLived = await assume(await mintToken(), { DurationSeconds: 3600 });
  t.equal(shortLived.Credentials?.Expiration?.getTime(), nowSeconds() * 1000 + 5000);
  t.equal(emulator.issued(shortLived.Credentials?.AccessKeyId ?? '')?.expiration.getTime(), nowSeconds() * 1000 + 5000);
  emulator.setCredentialLifetime(null);
  const normal = await assume(await mintToken(), { DurationSeconds: 3600 });
  t.equal(normal.Credentials?.Expiration?.getTime(), nowSeconds() * 1000 + 3600_000);
  t.throws(() => emulator.setCredentialLifetime(1.5), EmulatorConfigError);
});

t.test('static issuer host', async (t) => {
  const discovery = await fetch(`${issuer}/.well-known/openid-configuration`);
  t.equal(discovery.status, 200);
  t.equal(discovery.headers.get('content-type'), 'application/json');
  t.match(await discovery.json(), { issuer, jwks_uri: `${issuer}/.well-known/jwks.json` });
  const jwks = await raw('HEAD', '/oidc/.well-known/jwks.json');
  t.equal(jwks.status, 200);
  t.equal(jwks.headers['content-type'], 'application/json');
  t.equal(jwks.body, '', 'HEAD has no body');

  const refused = [
    '/oidc/../package.json',
    '/oidc/../secret.json',
    '/oidc/.well-known/../../secret.json',
    '/oidc/%2e%2e/secret.json',
    '/oidc/%2E%2E/package.json',
    '/oidc/..%2fsecret.json',
    '/oidc/%2e%2e%2fsecret.json',
    '/oidc/..%5csecret.json',
    '/oidc/.well-known/%2e%2e%2f%2e%2e%2fsecret.json',
    '/oidc/%252e%252e/secret.json',
    '/oidc//secret.json',
    '/oidc/%00',
    '/oidc/%zz',
    '/oidc/escape.json',
    '/oidc/',
    '/oidc',
    '/oidc/.well-known/',
    '/oidc/.well-known',
    '/oidc/missing.json',
  ];
  for (const path of refused) {
    const res = await raw('GET', path);
    t.ok(res.status === 400 || res.status === 404, `${path} -> ${res.status}`);
    t.notMatch(res.body, 'leaked', `${path} serves nothing from outside`);
  }
  t.equal((await raw('PUT', '/oidc/.well-known/jwks.json', '{}')).status, 405, 'read-only');
  t.equal((await raw('GET', '/elsewhere')).status, 404);
  const notForm = await raw('POST', '/', JSON.stringify({ Action: 'AssumeRoleWithWebIdentity' }), { 'content-type': 'application/json' });
  t.equal(notForm.status, 400, 'STS reads form bodies only');
});

t.test('setup is validated', async (t) => {
  await t.rejects(startEmulator({ host: '0.0.0.0' }), { name: 'EmulatorConfigError', code: 'InvalidHost' });
  await t.rejects(startEmulator({ host: 'localhost' }), { code: 'InvalidHost' });
  await t.rejects(startEmulator({ issuerDir: join(base, 'nope') }), { code: 'InvalidIssuerDir' });
  t.throws(() => emulator.createOpenIDConnectProvider({ url: issuer, clientIds: [AUD] }), { code: 'EntityAlreadyExists' });
  t.throws(
    () => emulator.createOpenIDConnectProvider({ url: 'http://issuer.example.com', clientIds: [AUD] }),
    { code: 'ValidationError' },
    'plain http only to loopback',
  );
  t.throws(() => emulator.createRole({ arn: 'arn:aws:iam::1234:role/x', trust: { providerUrl: issuer } }), { code: 'ValidationError' });
  t.throws(
    () => emulator.createRole({ arn: `arn:aws:iam::${ACCOUNT}:role/x`, maxSessionDurationSeconds: 100, trust: { providerUrl: issuer } }),
    { code: 'ValidationError' },
  );

  const bad =
    (trust: object): (() => void) =>
    () =>
      emulator.createRole({ arn: `arn:aws:iam::${ACCOUNT}:role/bad`, trust } as never);
  t.throws(
    bad({ providerUrl: issuer, conditions: { StringEquals: { sub: 'x' } } }),
    { code: 'ValidationError' },
    'condition key without issuer prefix',
  );
  t.throws(
    bad({ providerUrl: issuer, conditions: { StringNotEquals: { [`${hostPath}:sub`]: 'x' } } }),
    { code: 'ValidationError' },
    'unsupported operator',
  );
  t.throws(
    bad({ providerUrl: issuer, conditions: { StringEquals: { [`${hostPath}:sub`]: [] } } }),
    { code: 'ValidationError' },
    'no values',
  );
  t.throws(bad({ providerUrl: 'ftp://x' }), { code: 'ValidationError' }, 'provider URL scheme');
  t.throws(() => emulator.createRole({ arn: ROLE_ARN, trust: { providerUrl: issuer } }), { code: 'EntityAlreadyExists' });
  t.throws(() => emulator.createOpenIDConnectProvider({ url: `${issuer}/x`, clientIds: [''] }), { code: 'ValidationError' });
  t.throws(() => emulator.setFault({ kind: 'explode' } as never), { code: 'ValidationError' });

  const v6 = await startEmulator({ host: '::1' }).catch(() => undefined);
  if (v6 !== undefined) {
    t.match(v6.url, /^http:\/\/\[::1\]:\d+$/);
    await v6.close();
  }
});

t.test('close() ends calls held by a delay fault', async (t) => {
  const held = await startEmulator();
  const heldClient = new STSClient({ endpoint: held.stsEndpoint, region: 'us-east-1', maxAttempts: 1 });
  t.teardown(() => heldClient.destroy());
  held.setFault({ kind: 'delay', ms: 60_000 });
  const call = heldClient.send(
    new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'held', WebIdentityToken: await mintToken() }),
  );
  const outcome = call.then(
    () => 'answered',
    () => 'failed',
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  const started = performance.now();
  await held.close();
  await held.close();
  t.equal(await outcome, 'failed', 'the held call fails instead of waiting out the delay');
  t.ok(performance.now() - started < 1000, 'close() did not wait for the delay');
  t.match(held.stats, { stsCalls: 1, stsSuccesses: 0, stsFailures: 1 });
});
