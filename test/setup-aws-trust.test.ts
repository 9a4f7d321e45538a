/**
 * What `credport setup aws` writes into a role's trust policy, evaluated by the emulator's IAM against
 * the daemon's own JWT: the role template is generated, its intrinsic functions resolved as
 * CloudFormation would, the trust policy registered as the role's, and the token minted by the aws-oidc
 * provider from a loaded config ([oidc] principal_tags included) goes through the real STS client.
 * Matching aud, sub and tags are admitted; a wrong sub, a missing or different tag, or a role that does
 * not allow sts:TagSession are refused with STS's AccessDenied.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'smol-toml';
import { type ResolvedConfig, loadConfig } from '../daemon/config/load.js';
import { awsRuntime } from '../daemon/clouds/aws/runtime.js';
import { sessionTagsClaim, sessionTagsOf } from '../daemon/clouds/aws/oidc/session-tags.js';
import { roleTemplate, type RoleTemplateOptions } from '../daemon/clouds/aws/setup/role-template.js';
import { rolesAnywhereTemplate } from '../daemon/clouds/aws/setup/rolesanywhere-template.js';
import { defaultSubject, mintIdentityToken } from '../daemon/identity/jwt.js';
import { ProviderError } from '../daemon/providers/types.js';
import { EmulatorConfigError, IamRegistry } from '../emulator/iam.js';
import { ACCOUNT, roleArnFor, startStack } from './helpers/stack.js';
import { resolveIntrinsics } from './helpers/cfn-resolve.js';

const stack = await startStack({ startDaemon: false });
t.teardown(() => stack.close());
const issuer = stack.emulator.issuerBaseUrl;
const subject = defaultSubject(stack.signer);

/** The template's trust policy as CloudFormation would hand it to IAM in this account. */
function deployedTrustPolicy(o: RoleTemplateOptions): unknown {
  const template = JSON.parse(JSON.stringify(roleTemplate(o)));
  return resolveIntrinsics(template.Resources.DeviceRole.Properties.AssumeRolePolicyDocument, {
    'AWS::Partition': 'aws',
    'AWS::AccountId': ACCOUNT,
  });
}

let roles = 0;
function roleFrom(o: Omit<RoleTemplateOptions, 'issuerUrl' | 'audience' | 'maxSessionDurationSeconds' | 'managedPolicyArns'>): string {
  const arn = roleArnFor(`setup-${++roles}`);
  stack.emulator.createRole({
    arn,
    trustPolicy: deployedTrustPolicy({
      issuerUrl: issuer,
      audience: 'sts.amazonaws.com',
      maxSessionDurationSeconds: 3600,
      managedPolicyArns: [],
      ...o,
    }),
  });
  return arn;
}

/** A config as a user writes it, loaded the way the daemon loads it. */
function configWith(oidc: Record<string, unknown>, roleArn: string): ResolvedConfig {
  const file = join(stack.dir, `config-${roles}-${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(
    file,
    stringify({
      key: { backend: 'file', path: stack.config.key.backend === 'file' ? stack.config.key.path : '' },
      oidc: { issuer, ...oidc },
      profiles: { default: { type: 'aws-oidc', role_arn: roleArn, sts_endpoint: stack.emulator.stsEndpoint } },
    }),
  );
  return loadConfig(file, process.env);
}

/** Credentials through the daemon's own provider: its JWT, its STS client. */
async function fetchWith(oidc: Record<string, unknown>, roleArn: string): Promise<{ ok: true } | { ok: false; code: string }> {
  const config = configWith(oidc, roleArn);
  const profile = config.profiles.get('default');
  if (profile === undefined) throw new Error('no profile');
  const provider = awsRuntime.createProvider('default', profile, {
    signer: stack.signer,
    env: process.env,
    config,
    tuning: { maxAttempts: 1 },
    source: () => async () => {
      throw new Error('no chaining here');
    },
    sourceUnattended: () => true,
  });
  try {
    await provider.fetch();
    return { ok: true };
  } catch (err) {
    if (err instanceof ProviderError) return { ok: false, code: err.code };
    throw err;
  } finally {
    provider.destroy?.();
  }
}

t.test('one device by sub: its JWT is admitted, another sub is not', async (t) => {
  const mine = roleFrom({ admission: { kind: 'subjects', subjects: [subject] }, sessionTagKeys: [] });
  const other = roleFrom({ admission: { kind: 'subjects', subjects: ['device:someone-else'] }, sessionTagKeys: [] });
  t.same(await fetchWith({}, mine), { ok: true }, 'matching aud and sub');
  t.same(await fetchWith({}, other), { ok: false, code: 'AccessDenied' }, 'wrong sub refused');
  t.same(await fetchWith({ subject: 'device:someone-else' }, mine), { ok: false, code: 'AccessDenied' }, 'a config naming another sub');
  t.same(
    await fetchWith({ audience: 'other-audience' }, mine),
    { ok: false, code: 'InvalidIdentityToken' },
    'foreign aud: the provider refuses first',
  );
});

t.test('several listed subjects: any of them', async (t) => {
  const arn = roleFrom({ admission: { kind: 'subjects', subjects: ['device:laptop', subject] }, sessionTagKeys: [] });
  t.same(await fetchWith({}, arn), { ok: true });
});

t.test('a fleet by session tag: the tag admits, a missing or other tag does not', async (t) => {
  const edge = roleFrom({ admission: { kind: 'tags', tags: { team: 'edge' }, subjectPattern: 'device:*' }, sessionTagKeys: ['team'] });
  t.same(await fetchWith({ principal_tags: { team: 'edge' } }, edge), { ok: true }, 'tag team=edge');
  t.same(await fetchWith({ principal_tags: { team: 'edge' }, transitive_tag_keys: ['team'] }, edge), { ok: true }, 'transitive too');
  t.same(await fetchWith({}, edge), { ok: false, code: 'AccessDenied' }, 'no tags at all');
  t.same(await fetchWith({ principal_tags: { team: 'core' } }, edge), { ok: false, code: 'AccessDenied' }, 'another team');
  t.same(await fetchWith({ principal_tags: { group: 'edge' } }, edge), { ok: false, code: 'AccessDenied' }, 'another key');
  t.same(
    await fetchWith({ principal_tags: { team: 'edge', admin: 'yes' } }, edge),
    { ok: false, code: 'AccessDenied' },
    'an extra tag the policy does not name (aws:TagKeys)',
  );
  t.same(
    await fetchWith({ principal_tags: { team: 'edge' }, subject: 'robot:1' }, edge),
    { ok: false, code: 'AccessDenied' },
    'a sub outside device:*',
  );
});

t.test('a token with tags needs a role that allows sts:TagSession', async (t) => {
  const plain = roleFrom({ admission: { kind: 'subjects', subjects: [subject] }, sessionTagKeys: [] });
  const tagging = roleFrom({ admission: { kind: 'subjects', subjects: [subject] }, sessionTagKeys: ['team'] });
  t.same(await fetchWith({ principal_tags: { team: 'edge' } }, plain), { ok: false, code: 'AccessDenied' }, 'no sts:TagSession');
  t.same(await fetchWith({ principal_tags: { team: 'edge' } }, tagging), { ok: true }, 'sts:TagSession allowed');
});

t.test("a refusal is STS's AccessDenied on the wire", async (t) => {
  const edge = roleFrom({ admission: { kind: 'tags', tags: { team: 'edge' }, subjectPattern: 'device:*' }, sessionTagKeys: ['team'] });
  const config = configWith({ principal_tags: { team: 'core' } }, edge);
  const oidc = config.oidc;
  if (oidc === undefined) throw new Error('no [oidc]');
  const tags = sessionTagsOf(oidc);
  const { token } = await mintIdentityToken(stack.signer, {
    issuer: oidc.issuer,
    subject,
    audience: oidc.audience,
    lifetimeSeconds: 300,
    ...(tags ? { extraClaims: sessionTagsClaim(tags) } : {}),
  });
  const call = async (roleArn: string) =>
    fetch(stack.emulator.stsEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        Action: 'AssumeRoleWithWebIdentity',
        Version: '2011-06-15',
        RoleArn: roleArn,
        RoleSessionName: 'setup-test',
        WebIdentityToken: token,
      }),
    });
  const refused = await call(edge);
  t.equal(refused.status, 403);
  const body = await refused.text();
  t.match(
    body,
    /<ErrorResponse[^>]*>\s*<Error>\s*<Type>Sender<\/Type>\s*<Code>AccessDenied<\/Code>\s*<Message>Not authorized to perform sts:AssumeRoleWithWebIdentity<\/Message>/,
  );
  t.notMatch(body, token.slice(-20), 'the token is not echoed');
  const core = roleFrom({ admission: { kind: 'tags', tags: { team: 'core' }, subjectPattern: 'device:*' }, sessionTagKeys: ['team'] });
  const admitted = await call(core);
  t.equal(admitted.status, 200);
  t.match(await admitted.text(), /<SubjectFromWebIdentityToken>device:/);
});

t.test('a Roles Anywhere template trust policy: the anchor and the CN decide', async (t) => {
  const template = JSON.parse(
    JSON.stringify(
      rolesAnywhereTemplate({
        caCertificatePem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
        subject: { CN: ['laptop-1'] },
        maxSessionDurationSeconds: 3600,
        sessionDurationSeconds: 3600,
        managedPolicyArns: [],
      }),
    ),
  );
  const anchor = `arn:aws:rolesanywhere:us-east-1:${ACCOUNT}:trust-anchor/00000000-0000-4000-8000-000000000001`;
  const policy = resolveIntrinsics(template.Resources.DeviceRole.Properties.AssumeRolePolicyDocument, {
    'TrustAnchor.TrustAnchorArn': anchor,
  });
  const arn = roleArnFor('setup-ra');
  const iam = new IamRegistry();
  const provider = iam.createOpenIDConnectProvider({ url: issuer, clientIds: ['sts.amazonaws.com'] });
  const role = iam.createRole({ arn, trustPolicy: policy });
  const ctx = (cn: string, trustAnchorArn = anchor) => ({
    trustAnchorArn,
    subject: new Map([['CN', cn]]),
    issuer: new Map([['CN', 'ca']]),
  });
  t.ok(iam.trustsRolesAnywhere(role, ctx('laptop-1')), 'the CN from the anchor');
  t.notOk(iam.trustsRolesAnywhere(role, ctx('laptop-2')), 'another CN');
  t.notOk(iam.trustsRolesAnywhere(role, ctx('laptop-1', anchor.replace(/1$/, '2'))), 'another anchor');
  t.notOk(iam.trusts(role, { provider, subject, audience: 'sts.amazonaws.com' }), 'no web identity');
});

t.test('the emulator refuses what it would not evaluate', async (t) => {
  const policy = (statement: Record<string, unknown>) => ({ Version: '2012-10-17', Statement: [statement] });
  const base = { Effect: 'Allow', Principal: { Service: 'x' }, Action: 'sts:AssumeRole' };
  t.throws(
    () =>
      stack.emulator.createRole({
        arn: roleArnFor('bad-1'),
        trustPolicy: policy({ ...base, Condition: { DateGreaterThan: { 'aws:CurrentTime': '2020' } } }),
      }),
    EmulatorConfigError,
  );
  t.throws(
    () => stack.emulator.createRole({ arn: roleArnFor('bad-2'), trustPolicy: policy({ ...base, NotPrincipal: { AWS: '*' } }) }),
    EmulatorConfigError,
  );
  t.throws(
    () => stack.emulator.createRole({ arn: roleArnFor('bad-3'), trustPolicy: { Version: '2008-10-17', Statement: [base] } }),
    EmulatorConfigError,
  );
});

t.test('a malformed tags claim is the token at fault, as STS says', async (t) => {
  const edge = roleFrom({ admission: { kind: 'tags', tags: { team: 'edge' }, subjectPattern: 'device:*' }, sessionTagKeys: ['team'] });
  const post = async (claim: unknown) => {
    const { token } = await mintIdentityToken(stack.signer, {
      issuer,
      subject,
      audience: 'sts.amazonaws.com',
      lifetimeSeconds: 300,
      extraClaims: { 'https://aws.amazon.com/tags': claim },
    });
    const r = await fetch(stack.emulator.stsEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        Action: 'AssumeRoleWithWebIdentity',
        Version: '2011-06-15',
        RoleArn: edge,
        RoleSessionName: 's1',
        WebIdentityToken: token,
      }),
    });
    return { status: r.status, body: await r.text() };
  };
  const bare = await post({ principal_tags: { team: 'edge' } });
  t.equal(bare.status, 400);
  t.match(bare.body, /<Code>InvalidIdentityToken<\/Code>[\s\S]*a list of one string/);
  const transitive = await post({ principal_tags: { team: ['edge'] }, transitive_tag_keys: ['site'] });
  t.match(transitive.body, /transitive tag key site is not a principal tag/);
  t.equal((await post({ principal_tags: { team: ['edge'] } })).status, 200, 'the well-formed claim');
});
