// Role chaining: an aws-assume-role profile signs STS AssumeRole with the credentials of its source
// profile (here an aws-oidc profile). The emulator verifies the SigV4 signature with the secret of the
// credentials it issued, refuses unknown and expired ones, and checks the target role's trust policy.
// boto3 (an independent SigV4 signer) is run against the same endpoint as a cross-check.

import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { startEmulator } from '../emulator/index.js';
import { exportIssuer, publishedJwk } from '../daemon/identity/issuer-documents.js';
import { defaultSubject } from '../daemon/identity/jwt.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { AwsAssumeRoleProvider, type AwsAssumeRoleProviderOptions } from '../daemon/clouds/aws/assume-role/provider.js';
import { AwsOidcProvider } from '../daemon/clouds/aws/oidc/provider.js';
import { ProviderError } from '../daemon/providers/types.js';
import type { AwsCredentials } from '../daemon/clouds/aws/credentials.js';
import { assertPresent, debianBoto3, needs } from './helpers/tools.js';

const SOURCE_ACCOUNT = '111122223333';
const TARGET_ACCOUNT = '444455556666';
const SOURCE_ROLE = `arn:aws:iam::${SOURCE_ACCOUNT}:role/source`;
const BY_ROLE = `arn:aws:iam::${TARGET_ACCOUNT}:role/deploy`;
const BY_ACCOUNT = `arn:aws:iam::${TARGET_ACCOUNT}:role/by-account`;
const BY_ACCOUNT_ID = `arn:aws:iam::${TARGET_ACCOUNT}:role/by-account-id`;
const WITH_EXTERNAL_ID = `arn:aws:iam::${TARGET_ACCOUNT}:role/third-party`;
const UNTRUSTING = `arn:aws:iam::${TARGET_ACCOUNT}:role/closed`;

const dir = mkdtempSync(join(tmpdir(), 'credport-assume-'));
const issuerDir = join(dir, 'issuer');
mkdirSync(issuerDir);
let clock = Date.now();
const emulator = await startEmulator({ issuerDir, now: () => clock });
t.teardown(async () => {
  await emulator.close();
  rmSync(dir, { recursive: true, force: true });
});

const signer = FileKeySigner.create(join(dir, 'device-key.pem'));
const issuer = emulator.issuerBaseUrl;
exportIssuer(issuerDir, issuer, publishedJwk(signer.publicJwk(), signer.thumbprint));
emulator.createOpenIDConnectProvider({ url: issuer, clientIds: ['sts.amazonaws.com'] });
const host = issuer.replace(/^https?:\/\//, '');
emulator.createRole({
  arn: SOURCE_ROLE,
  trust: { providerUrl: issuer, conditions: { StringEquals: { [`${host}:sub`]: defaultSubject(signer) } } },
});
emulator.createRole({ arn: BY_ROLE, maxSessionDurationSeconds: 7200, trust: { principalArns: [SOURCE_ROLE] } });
emulator.createRole({ arn: BY_ACCOUNT, trust: { principalArns: [`arn:aws:iam::${SOURCE_ACCOUNT}:root`] } });
emulator.createRole({ arn: BY_ACCOUNT_ID, trust: { principalArns: [SOURCE_ACCOUNT] } });
emulator.createRole({ arn: WITH_EXTERNAL_ID, trust: { principalArns: [SOURCE_ROLE], externalId: 'credport-edge-7' } });
emulator.createRole({ arn: UNTRUSTING, trust: { principalArns: [`arn:aws:iam::999988887777:root`] } });

const source = new AwsOidcProvider({
  signer,
  issuer,
  subject: defaultSubject(signer),
  audience: 'sts.amazonaws.com',
  tokenLifetimeSeconds: 300,
  roleArn: SOURCE_ROLE,
  region: 'us-east-1',
  durationSeconds: 3600,
  roleSessionName: 'edge-source',
  stsEndpoint: emulator.stsEndpoint,
  maxAttempts: 1,
  now: () => clock,
});
t.teardown(() => source.destroy());
const sourceCreds = await source.fetch();

function provider(overrides: Partial<AwsAssumeRoleProviderOptions> = {}): AwsAssumeRoleProvider {
  return new AwsAssumeRoleProvider({
    source: async () => sourceCreds,
    sourceName: 'edge',
    roleArn: BY_ROLE,
    region: 'us-east-1',
    durationSeconds: 900,
    roleSessionName: 'credport-chained',
    stsEndpoint: emulator.stsEndpoint,
    maxAttempts: 1,
    ...overrides,
  });
}

async function failure(p: AwsAssumeRoleProvider): Promise<ProviderError> {
  try {
    await p.fetch();
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('fetch() succeeded where a failure was expected');
}

t.test("AssumeRole with the source profile's credentials", async (t) => {
  const before = emulator.stats;
  const creds = await provider().fetch();
  const issued = emulator.issued(creds.accessKeyId);
  t.match(issued, {
    via: 'AssumeRole',
    roleArn: BY_ROLE,
    sessionName: 'credport-chained',
    subject: `arn:aws:sts::${SOURCE_ACCOUNT}:assumed-role/source/edge-source`,
    audience: sourceCreds.accessKeyId,
  });
  t.equal(issued?.secretAccessKey, creds.secretAccessKey);
  t.equal(creds.expiration.getTime(), Math.floor(clock / 1000) * 1000 + 900_000);
  t.equal(creds.accountId, TARGET_ACCOUNT);
  t.equal(creds.roleArn, BY_ROLE);
  t.equal(emulator.stats.stsCalls - before.stsCalls, 1);
  t.same(provider().describe(), {
    type: 'aws-assume-role',
    source: `sts:AssumeRole ${emulator.stsEndpoint}`,
    principal: BY_ROLE,
    details: { roleArn: BY_ROLE, region: 'us-east-1' },
  });

  t.ok(await provider({ roleArn: BY_ACCOUNT }).fetch(), 'trusted through the account root ARN');
  t.ok(await provider({ roleArn: BY_ACCOUNT_ID }).fetch(), 'trusted through the bare account ID');
  // The chained session belongs to the target account, which BY_ACCOUNT_ID does not trust.
  t.match(
    await failure(provider({ source: async () => creds, roleArn: BY_ACCOUNT_ID })),
    {
      code: 'AccessDenied',
      message: new RegExp(`^User: arn:aws:sts::${TARGET_ACCOUNT}:assumed-role/deploy/credport-chained is not authorized`),
    },
    'a chained session is a principal of its own account',
  );
});

t.test('trust policy, ExternalId and the role-chaining limit', async (t) => {
  t.match(await failure(provider({ roleArn: UNTRUSTING })), {
    code: 'AccessDenied',
    retryable: false,
    upstreamStatus: 403,
    message: `User: arn:aws:sts::${SOURCE_ACCOUNT}:assumed-role/source/edge-source is not authorized to perform: sts:AssumeRole on resource: ${UNTRUSTING}`,
  });
  t.match(
    await failure(provider({ roleArn: `arn:aws:iam::${TARGET_ACCOUNT}:role/missing` })),
    { code: 'AccessDenied' },
    'an unknown role answers like an untrusting one',
  );
  t.match(await failure(provider({ roleArn: WITH_EXTERNAL_ID })), { code: 'AccessDenied' }, 'ExternalId required');
  t.match(await failure(provider({ roleArn: WITH_EXTERNAL_ID, externalId: 'wrong-id' })), { code: 'AccessDenied' }, 'wrong ExternalId');
  t.ok(await provider({ roleArn: WITH_EXTERNAL_ID, externalId: 'credport-edge-7' }).fetch(), 'matching ExternalId');
  t.match(await failure(provider({ durationSeconds: 7200 })), {
    code: 'ValidationError',
    upstreamStatus: 400,
    message: /1 hour session limit for roles assumed by role chaining/,
  });
  t.match(await failure(provider({ roleSessionName: 'has space' })), { code: 'ValidationError', message: /roleSessionName/ });
});

t.test('source credentials STS does not accept', async (t) => {
  const unknown: AwsCredentials = { ...sourceCreds, accessKeyId: 'ASIAAAAAAAAAAAAAAAAA' };
  t.match(await failure(provider({ source: async () => unknown })), {
    code: 'InvalidClientTokenId',
    upstreamStatus: 403,
    retryable: false,
  });
  t.match(
    await failure(provider({ source: async () => ({ ...sourceCreds, sessionToken: `${sourceCreds.sessionToken.slice(0, -4)}AAAA` }) })),
    { code: 'InvalidClientTokenId' },
    "a session token that is not the key's",
  );
  t.match(
    await failure(provider({ source: async () => ({ ...sourceCreds, secretAccessKey: 'x'.repeat(40) }) })),
    { code: 'SignatureDoesNotMatch', upstreamStatus: 403 },
    'a wrong secret',
  );

  emulator.setCredentialLifetime(60);
  const shortLived = await source.fetch();
  emulator.setCredentialLifetime(null);
  clock += 120_000;
  try {
    t.match(await failure(provider({ source: async () => shortLived })), { code: 'ExpiredToken', upstreamStatus: 400, message: /expired/ });
  } finally {
    clock -= 120_000;
  }

  t.match(
    await failure(
      provider({
        source: async () => {
          throw new ProviderError('InvalidIdentityToken', 'No key with kid x', false, 400);
        },
      }),
    ),
    { code: 'InvalidIdentityToken', retryable: false, message: 'source profile edge: No key with kid x' },
    "the source's own error, named",
  );
  t.match(
    await failure(
      provider({
        source: async () => {
          throw new Error('not started');
        },
      }),
    ),
    { code: 'SourceCredentialsUnavailable', retryable: true },
  );
});

t.test('the emulator checks the SigV4 request itself', async (t) => {
  const unsigned = await fetch(emulator.stsEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ Action: 'AssumeRole', Version: '2011-06-15', RoleArn: BY_ROLE, RoleSessionName: 'x1' }).toString(),
  });
  t.equal(unsigned.status, 403);
  t.match(await unsigned.text(), /<Code>MissingAuthenticationToken<\/Code>/);

  // STS's clock 20 minutes ahead of this machine: the SDK's request looks stale and is refused; allowed a
  // retry, the SDK corrects its clock from the emulator's Date header and succeeds.
  const client = (maxAttempts: number, region = 'us-east-1'): STSClient =>
    new STSClient({
      endpoint: emulator.stsEndpoint,
      region,
      maxAttempts,
      credentials: {
        accessKeyId: sourceCreds.accessKeyId,
        secretAccessKey: sourceCreds.secretAccessKey,
        sessionToken: sourceCreds.sessionToken,
      },
    });
  // Signed for another region than the endpoint's: refused as a regional STS endpoint refuses it.
  const elsewhere = client(1, 'eu-west-1');
  await t.rejects(elsewhere.send(new AssumeRoleCommand({ RoleArn: BY_ROLE, RoleSessionName: 'elsewhere' })), {
    name: 'SignatureDoesNotMatch',
    message: /scoped to a valid region, not 'eu-west-1'/,
  });
  elsewhere.destroy();
  const saved = clock;
  clock = Date.now() + 20 * 60_000;
  try {
    const once = client(1);
    await t.rejects(once.send(new AssumeRoleCommand({ RoleArn: BY_ROLE, RoleSessionName: 'skewed' })), {
      name: 'SignatureDoesNotMatch',
      message: /^Signature expired: \d{8}T\d{6}Z is now earlier than .* - 15 min\.\)$/,
    });
    once.destroy();
    const retrying = client(2);
    const out = await retrying.send(new AssumeRoleCommand({ RoleArn: BY_ROLE, RoleSessionName: 'skewed' }));
    t.ok(out.Credentials?.AccessKeyId, "the SDK's own skew correction works with the emulator's Date header");
    retrying.destroy();
  } finally {
    clock = saved;
  }
});

const BOTO3 = `
import json, sys
import boto3, botocore.exceptions
v = json.load(sys.stdin)
sts = boto3.client('sts', endpoint_url=v['endpoint'], region_name='us-east-1',
    aws_access_key_id=v['ak'], aws_secret_access_key=v['sk'], aws_session_token=v['st'])
try:
    r = sts.assume_role(RoleArn=v['role'], RoleSessionName='boto3-chained', DurationSeconds=900)
    print(json.dumps({'ok': True, 'ak': r['Credentials']['AccessKeyId'], 'arn': r['AssumedRoleUser']['Arn']}))
except botocore.exceptions.ClientError as e:
    print(json.dumps({'ok': False, 'code': e.response['Error']['Code']}))
`;

t.test('boto3 (an independent SigV4 signer) is accepted, and refused with a wrong secret', needs(debianBoto3), async (t) => {
  if (!assertPresent(t, debianBoto3)) return;
  // Asynchronous: the emulator answers from this very process, so a synchronous spawn would deadlock.
  const run = async (sk: string): Promise<{ ok: boolean; ak?: string; arn?: string; code?: string }> => {
    const child = spawn('/usr/bin/python3', ['-c', BOTO3], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      timeout: 20_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.stdin.end(
      JSON.stringify({ endpoint: emulator.stsEndpoint, ak: sourceCreds.accessKeyId, sk, st: sourceCreds.sessionToken, role: BY_ROLE }),
    );
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`python exited ${code}: ${stderr}`);
    return JSON.parse(stdout) as { ok: boolean; ak?: string; arn?: string; code?: string };
  };
  const ok = await run(sourceCreds.secretAccessKey);
  t.equal(ok.ok, true);
  t.equal(ok.arn, `arn:aws:sts::${TARGET_ACCOUNT}:assumed-role/deploy/boto3-chained`);
  t.equal(emulator.issued(ok.ak ?? '')?.via, 'AssumeRole');
  t.same(await run('wrong-secret-wrong-secret-wrong-secret00'), { ok: false, code: 'SignatureDoesNotMatch' });
});
