/**
 * `credport setup aws` as a process: every template it prints passes cfn-lint (errors, warnings and
 * informational findings all fail: none is ignored), bad input is refused with one line before any AWS
 * call (the CloudFormation endpoint given is a closed port, so a call would fail differently), and
 * --write-config edits only the keys it owns.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResourceStatus, StackEvent } from '@aws-sdk/client-cloudformation';
import t from 'tap';
import { issuerTemplate } from '../daemon/clouds/aws/setup/issuer-template.js';
import { templateJson } from '../daemon/clouds/aws/setup/cfn.js';
import { failureReport } from '../daemon/clouds/aws/setup/deploy.js';
import { roleTemplate } from '../daemon/clouds/aws/setup/role-template.js';
import { setTableKeys, writeConfig } from '../daemon/clouds/aws/setup/write-config.js';
import { initCa } from '../daemon/x509/ca.js';
import { freePort, runCli } from './helpers/cli.js';
import { assertPresent, needs, tool } from './helpers/tools.js';

const cfnLint = tool(
  'cfn-lint',
  () => spawnSync('cfn-lint', ['--version'], { stdio: 'ignore', timeout: 60_000 }).status === 0,
  'pip install cfn-lint',
);
const openssl = tool('openssl', () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0, 'apt-get install openssl');

const dir = mkdtempSync(join(tmpdir(), 'credport-setup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ca = await initCa({ dir: join(dir, 'ca'), subject: 'CN=Test device CA', days: 30 });
const keyPath = join(dir, 'device.pem');
const init = runCli([
  'init',
  '--config',
  join(dir, 'config.toml'),
  '--key-path',
  keyPath,
  '--issuer',
  'https://d111111abcdef8.cloudfront.net',
  '--role-arn',
  'arn:aws:iam::111122223333:role/dev',
]);
const configFile = join(dir, 'config.toml');
const fleetConfig = join(dir, 'fleet.toml');
writeFileSync(
  fleetConfig,
  readFileSync(configFile, 'utf8').replace(
    /\[oidc\]\n/,
    '[oidc]\nprincipal_tags = { team = "edge", site = "ams" }\ntransitive_tag_keys = ["team"]\n',
  ),
);

/**
 * cfn-lint's exit code is a bitmask: 2 errors, 4 warnings, 8 informational. Any bit fails here: no
 * finding is ignored. One run for all files (it starts slowly); a finding names its file.
 */
function lint(files: Record<string, string>): { status: number | null; findings: string } {
  const paths = Object.entries(files).map(([name, body]) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, body);
    return file;
  });
  const r = spawnSync('cfn-lint', ['--include-checks', 'I', '--format', 'parseable', '--', ...paths], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: r.status, findings: `${r.stdout}${r.stderr}` };
}

t.test('every template setup prints passes cfn-lint', needs(cfnLint), async (t) => {
  if (!assertPresent(t, cfnLint)) return;
  t.equal(init.status, 0, `init: ${init.stderr}`);
  const printed: Array<[string, string[]]> = [
    ['issuer', ['issuer']],
    // As the acceptance line runs it: no stack named prints the first one, the issuer's.
    ['unnamed', []],
    ['role-device', ['role', '--config', configFile]],
    [
      'role-subjects',
      [
        'role',
        '--issuer',
        'https://d2.cloudfront.net/tenant',
        '--subject',
        'device:a',
        '--subject',
        'device:b',
        '--policy-arn',
        'arn:aws:iam::aws:policy/ReadOnlyAccess',
        '--max-session-duration',
        '43200',
        '-c',
        '/nonexistent',
      ],
    ],
    ['role-fleet', ['role', '--fleet', '--config', fleetConfig]],
    ['role-tags-and-sub', ['role', '--config', fleetConfig]],
    ['rolesanywhere', ['rolesanywhere', '--ca-cert', ca.certPath, '--cn', 'laptop-1', '--cn', 'laptop-2', '-c', '/nonexistent']],
    ['rolesanywhere-any', ['rolesanywhere', '--ca-cert', ca.certPath, '-c', '/nonexistent']],
  ];
  const templates: Record<string, string> = {};
  for (const [name, args] of printed) {
    const r = runCli(['setup', 'aws', ...args, '--print-template']);
    t.equal(r.status, 0, `${name}: ${r.stderr}`);
    t.doesNotThrow(() => JSON.parse(r.stdout), `${name} is JSON`);
    templates[name] = r.stdout;
  }
  t.equal(templates.unnamed, templates.issuer, 'with no stack named, the issuer template is printed');
  const result = lint(templates);
  t.equal(result.status, 0, `cfn-lint exit ${result.status}`);
  t.equal(result.findings, '', 'no findings at all');
  const fleet = JSON.parse(runCli(['setup', 'aws', 'role', '--fleet', '--config', fleetConfig, '--print-template']).stdout);
  const trust = fleet.Resources.DeviceRole.Properties.AssumeRolePolicyDocument.Statement[0];
  t.same(trust.Action, ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession']);
  t.same(trust.Condition.StringEquals, {
    'd111111abcdef8.cloudfront.net:aud': 'sts.amazonaws.com',
    'aws:RequestTag/team': 'edge',
    'aws:RequestTag/site': 'ams',
  });
  t.same(trust.Condition['ForAllValues:StringEquals'], { 'aws:TagKeys': ['team', 'site'] });
  t.same(trust.Condition.StringLike, { 'd111111abcdef8.cloudfront.net:sub': 'device:*' });
});

t.test('cfn-lint is really judging: a broken template fails it', needs(cfnLint), async (t) => {
  if (!assertPresent(t, cfnLint)) return;
  const broken = issuerTemplate({ audience: 'sts.amazonaws.com' });
  (broken.Resources.IssuerBucket as { Properties: Record<string, unknown> }).Properties.VersioningConfiguration = { Status: 'Sometimes' };
  const r = lint({ broken: templateJson(broken) });
  t.ok((r.status ?? 0) & 2, `an error is reported (exit ${r.status})`);
  t.match(r.findings, /broken\.json/);
  const role = roleTemplate({
    issuerUrl: 'https://d1.cloudfront.net',
    audience: 'sts.amazonaws.com',
    admission: { kind: 'subjects', subjects: ['device:a'] },
    sessionTagKeys: [],
    maxSessionDurationSeconds: 100,
    managedPolicyArns: [],
  });
  t.ok((lint({ short: templateJson(role) }).status ?? 0) & 2, 'MaxSessionDuration below 3600 is an error');
});

t.test('bad input: one line, before any AWS call', async (t) => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  const noCredentials = {
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    HOME: dir,
  };
  const cases: Array<[string, string[], RegExp, number, Record<string, string>?]> = [
    ['bad region', ['issuer', '--region', 'moon-1'], /--region: "moon-1" is not an AWS region/, 2],
    ['invalid stack name', ['issuer', '--stack-name', '9lives'], /--stack-name: "9lives" is not a usable/, 2],
    ['unknown stack', ['bucket'], /unknown stack "bucket"/, 2],
    ['no CA given', ['rolesanywhere'], /rolesanywhere needs the CA certificate/, 2],
    ['role without an issuer', ['role', '--subject', 'device:a', '-c', '/nonexistent'], /needs the issuer URL/, 2],
    ['http issuer', ['role', '--subject', 'device:a', '--issuer', 'http://example.com', '-c', '/nonexistent'], /must be an https URL/, 2],
    ['fleet without tags', ['role', '--fleet', '--config', configFile], /\[oidc\] principal_tags names none/, 2],
    ['print-template of two stacks', ['issuer', 'role', '--print-template'], /--print-template prints one stack/, 2],
    ['no credentials', ['issuer', '-c', '/nonexistent'], /no AWS credentials to deploy with/, 3, noCredentials],
  ];
  for (const [name, args, message, status, env] of cases) {
    const r = runCli(
      ['setup', 'aws', ...args, '--endpoint', closed],
      env ?? { AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'test' },
    );
    t.equal(r.status, status, `${name}: exit ${status}`);
    t.match(r.stderr, message, name);
    t.notMatch(r.stderr, /ECONNREFUSED|ENOTFOUND/, `${name}: no call was made`);
    t.equal(r.stderr.trim().split('\n').length <= 2, true, `${name}: one line (and a hint)`);
  }
});

t.test('a certificate that is not a CA is refused before any call', needs(openssl), async (t) => {
  if (!assertPresent(t, openssl)) return;
  const leaf = join(dir, 'leaf.pem');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=laptop-1',
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-days',
      '1',
      '-keyout',
      join(dir, 'leaf.key'),
      '-out',
      leaf,
    ],
    { encoding: 'utf8' },
  );
  t.equal(made.status, 0, made.stderr);
  const r = runCli([
    'setup',
    'aws',
    'rolesanywhere',
    '--ca-cert',
    leaf,
    '--endpoint',
    `http://127.0.0.1:${await freePort()}`,
    '-c',
    '/nonexistent',
  ]);
  t.equal(r.status, 2);
  t.match(r.stderr, /is not a CA certificate/);
  const two = join(dir, 'two.pem');
  writeFileSync(two, readFileSync(ca.certPath, 'utf8') + readFileSync(leaf, 'utf8'));
  t.match(
    runCli(['setup', 'aws', 'rolesanywhere', '--ca-cert', two, '--print-template', '-c', '/nonexistent']).stderr,
    /exactly one PEM certificate, found 2/,
  );
});

t.test('--write-config edits only its keys, keeps the rest byte for byte', async (t) => {
  const text = `# my credport
[daemon]
listen = "127.0.0.1:9911" # fixed port

[key]
backend = "file"
path = "${keyPath}"

[oidc]
issuer = "https://old.example.com" # was by hand
token_lifetime_seconds = 120

[profiles.dev]
type = "aws-oidc"
default = true
role_arn = "arn:aws:iam::111122223333:role/old"
# a comment in the profile
`;
  const file = join(dir, 'edit.toml');
  writeFileSync(file, text, { mode: 0o640 });
  writeConfig(
    file,
    [
      {
        table: 'oidc',
        values: {
          issuer: 'https://d3.cloudfront.net',
          publish_bucket: 's3://credport-issuer-abc',
          publish_distribution_id: 'E2ABCDEFGHIJ',
        },
      },
      { table: 'profiles.dev', values: { role_arn: 'arn:aws:iam::111122223333:role/new', region: 'eu-west-1' } },
      {
        table: 'profiles.ra',
        values: {
          type: 'aws-rolesanywhere',
          certificate: '/etc/dev.pem',
          trust_anchor_arn: 'arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/00000000-0000-4000-8000-000000000001',
          profile_arn: 'arn:aws:rolesanywhere:eu-west-1:111122223333:profile/00000000-0000-4000-8000-000000000002',
          role_arn: 'arn:aws:iam::111122223333:role/ra',
        },
      },
    ],
    process.env,
  );
  const after = readFileSync(file, 'utf8');
  t.match(after, /^# my credport\n\[daemon\]\nlisten = "127.0.0.1:9911" # fixed port\n/, 'untouched tables kept');
  t.match(
    after,
    /\[oidc\]\nissuer = "https:\/\/d3.cloudfront.net"\ntoken_lifetime_seconds = 120\npublish_bucket = "s3:\/\/credport-issuer-abc"\npublish_distribution_id = "E2ABCDEFGHIJ"\n/,
  );
  t.match(after, /role_arn = "arn:aws:iam::111122223333:role\/new"\n# a comment in the profile\nregion = "eu-west-1"\n/);
  t.match(after, /\n\[profiles.ra\]\ntype = "aws-rolesanywhere"\n/);
  t.equal(after.match(/role_arn = "arn:aws:iam::111122223333:role\/old"/), null);

  const before = readFileSync(file, 'utf8');
  t.throws(
    () => writeConfig(file, [{ table: 'oidc', values: { publish_bucket: 'not-s3' } }], process.env),
    /would not be valid.*nothing was changed/,
  );
  t.equal(readFileSync(file, 'utf8'), before, 'a value the schema refuses leaves the file as it was');
  t.equal(setTableKeys('', 'oidc', { issuer: 'https://x' }), '[oidc]\nissuer = "https://x"\n');
});

t.test('a rollback is reported with the resource that failed and its reason', async (t) => {
  // Events in the order CloudFormation emits them for a first deploy that failed (oldest first).
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
  const ev = (id: string, type: string, status: string, reason?: string, s = 0): StackEvent => ({
    StackId: 'arn:aws:cloudformation:us-east-1:111122223333:stack/credport-issuer/1',
    StackName: 'credport-issuer',
    EventId: `${id}-${status}`,
    LogicalResourceId: id,
    ResourceType: type,
    ResourceStatus: status as ResourceStatus,
    Timestamp: at(s),
    ...(reason !== undefined ? { ResourceStatusReason: reason } : {}),
  });
  const events = [
    ev('credport-issuer', 'AWS::CloudFormation::Stack', 'CREATE_IN_PROGRESS', 'User Initiated', 1),
    ev('IssuerBucket', 'AWS::S3::Bucket', 'CREATE_COMPLETE', undefined, 2),
    ev('IssuerCachePolicy', 'AWS::CloudFront::CachePolicy', 'CREATE_FAILED', 'Resource creation cancelled', 3),
    ev(
      'IssuerOriginAccessControl',
      'AWS::CloudFront::OriginAccessControl',
      'CREATE_FAILED',
      'Resource handler returned message: "Invalid request provided: AWS::CloudFront::OriginAccessControl: An origin access control with the same name already exists.\n(Service: CloudFront, Status Code: 409)"',
      4,
    ),
    ev(
      'credport-issuer',
      'AWS::CloudFormation::Stack',
      'ROLLBACK_IN_PROGRESS',
      'The following resource(s) failed to create: [IssuerCachePolicy, IssuerOriginAccessControl]. Rollback requested by user.',
      5,
    ),
    ev('IssuerBucket', 'AWS::S3::Bucket', 'DELETE_SKIPPED', undefined, 6),
    ev('credport-issuer', 'AWS::CloudFormation::Stack', 'ROLLBACK_COMPLETE', undefined, 7),
  ];
  const report = failureReport('credport-issuer', 'ROLLBACK_COMPLETE', events);
  t.match(
    report,
    /^stack credport-issuer ended ROLLBACK_COMPLETE: IssuerOriginAccessControl \(AWS::CloudFront::OriginAccessControl\): Resource handler returned message: .*same name already exists/,
  );
  t.notMatch(report, /\n/, 'one line, whatever the reason holds');
  t.match(
    failureReport('s', 'UPDATE_ROLLBACK_COMPLETE', [], 'Stack was rolled back'),
    /ended UPDATE_ROLLBACK_COMPLETE: Stack was rolled back$/,
  );
  t.match(
    failureReport('s', 'ROLLBACK_COMPLETE', [events[2] as StackEvent]),
    /IssuerCachePolicy .*cancelled/,
    'only cancelled ones: the first',
  );
});
