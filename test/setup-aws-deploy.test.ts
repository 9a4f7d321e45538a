/**
 * The deploy mechanics of `credport setup aws` against moto's CloudFormation, through the real SDK
 * client and the CLI as a process. What this proves: the change-set flow (create, wait, list the
 * changes, execute or delete), that a dry run leaves no stack behind, that progress is followed to
 * CREATE_COMPLETE, that a second run with nothing to change changes nothing, that a stack credport did
 * not make is refused, and that an API error is one line. What it does not prove: moto cannot create
 * CloudFront, OIDC provider or Roles Anywhere resources, so only the role stack (an IAM role) is
 * deployed; moto returns no Outputs for a stack made by a change set, so --write-config after a deploy
 * is not exercised here (setup-aws.test.ts covers the config edit); and moto fails a bad resource at
 * ExecuteChangeSet instead of rolling back, so the rollback report is not exercised either.
 */
import { CloudFormationClient, CreateStackCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import t from 'tap';
import { runCliAsync } from './helpers/cli.js';
import { startMoto } from './helpers/moto.js';
import { assertPresent, motoServer, needs } from './helpers/tools.js';

const AWS_ENV = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', CREDPORT_SETUP_POLL_MS: '50' };
const ROLE_ARGS = ['role', '--issuer', 'https://d111111abcdef8.cloudfront.net', '--subject', 'device:abc', '-c', '/nonexistent'];

t.test('the role stack through change sets, on moto', needs(motoServer), async (t) => {
  if (!assertPresent(t, motoServer)) return;
  const moto = await startMoto();
  t.teardown(() => moto.close());
  const client = new CloudFormationClient({
    region: 'us-east-1',
    endpoint: moto.url,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  t.teardown(() => client.destroy());
  const status = async (name: string): Promise<string | undefined> => {
    try {
      return (await client.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0]?.StackStatus;
    } catch {
      return undefined;
    }
  };
  const setup = (...args: string[]) => runCliAsync(['setup', 'aws', ...ROLE_ARGS, '--endpoint', moto.url, ...args], AWS_ENV, 120_000);

  const dry = await setup('--stack-name', 'dev', '--dry-run');
  t.equal(dry.status, 0, dry.stderr);
  t.match(dry.stderr, /stack dev-role: create\n\s+Add DeviceRole \(AWS::IAM::Role\)\n/);
  t.match(dry.stderr, /dry run, change set deleted, nothing changed/);
  t.equal(await status('dev-role'), undefined, 'a dry run leaves no stack behind');

  const real = await setup('--stack-name', 'dev');
  t.equal(real.status, 0, real.stderr);
  t.match(real.stderr, /Add DeviceRole \(AWS::IAM::Role\)/);
  t.match(real.stderr, /dev-role \(AWS::CloudFormation::Stack\) CREATE_COMPLETE/, 'progress followed to the end');
  t.equal(await status('dev-role'), 'CREATE_COMPLETE');

  const again = await setup('--stack-name', 'dev');
  t.equal(again.status, 0, again.stderr);
  t.match(again.stderr, /stack dev-role: up to date/);
  t.notMatch(again.stderr, /Add DeviceRole/);

  await client.send(
    new CreateStackCommand({ StackName: 'theirs-role', TemplateBody: '{"Resources":{"Q":{"Type":"AWS::SQS::Queue","Properties":{}}}}' }),
  );
  const foreign = await setup('--stack-name', 'theirs');
  t.equal(foreign.status, 2);
  t.match(foreign.stderr, /stack theirs-role already exists and is not a credport role stack/);
  t.equal(await status('theirs-role'), 'CREATE_COMPLETE', 'left alone');

  const clash = await setup('--stack-name', 'clash', '--role-name', 'credport-device');
  t.equal(clash.status, 1, 'a role name another stack holds');
  t.match(clash.stderr, /^credport: stack clash-role: .*already exists/im, 'reported in one line with its stack');
  t.equal(
    clash.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('credport:')).length,
    1,
  );
  const badPolicy = await setup('--stack-name', 'bad', '--policy-arn', 'not-an-arn');
  t.not(badPolicy.status, 0);
  t.match(badPolicy.stderr, /^credport: stack bad-role: /m, 'an API error is reported with its stack');
});
