/**
 * The checks every AWS SDK for Go release runs through credport (one test file per release, so the
 * two builds run in parallel): the container endpoint with the inline token (Debian's releases know
 * no token file) for the default and a named profile, IMDSv2 with the endpoint in both spellings, and
 * a wrong token as the control. Each credential set must be the emulator's own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  EmptyHome,
  assertClientGot,
  cleanEnv,
  containerUri,
  daemonUrl,
  imdsEndpoint,
  parseCredentials,
  runChild,
  type ClientCredentials,
} from './clients.js';
import { GO_SOURCE, buildGoClient } from './go-client.js';
import { roleArnFor, startStack } from './stack.js';
import { assertPresent, needs, type Tool } from './tools.js';

export async function goSdkSuite(label: string, fixture: 'go-sdk-v1' | 'go-sdk-v2', sdk: Tool): Promise<void> {
  const stack = await startStack({ profiles: { default: {}, dev: {} } });
  const home = new EmptyHome();
  const bin = mkdtempSync(join(tmpdir(), `credport-${fixture}-`));
  t.teardown(async () => {
    await stack.close();
    home.remove();
    rmSync(bin, { recursive: true, force: true });
  });
  const client = sdk.present ? await buildGoClient(fixture, bin) : new Error(sdk.why);
  const run = async (vars: Record<string, string>): Promise<ClientCredentials | Error> => {
    if (client instanceof Error) return client;
    return parseCredentials(await runChild(client, [], cleanEnv(home, { AWS_REGION: 'us-east-1', ...vars }), home.dir));
  };
  const check = (tt: Test, got: ClientCredentials | Error, source: string, what: string, roleArn?: string): void => {
    assertClientGot(tt, stack, got, what, roleArn);
    if (!(got instanceof Error)) tt.equal(got.source, source, `${what}: the SDK used its ${source}`);
  };

  t.test(`${label}, container endpoint, inline token`, needs(sdk), async (tt) => {
    if (!assertPresent(tt, sdk)) return;
    check(
      tt,
      await run({ AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack), AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token() }),
      GO_SOURCE.ecs,
      `${label} container`,
    );
  });
  t.test(`${label}, container endpoint, named profile`, needs(sdk), async (tt) => {
    if (!assertPresent(tt, sdk)) return;
    const got = await run({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack, 'dev'),
      AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token(),
    });
    check(tt, got, GO_SOURCE.ecs, `${label} /v1/credentials/dev`, roleArnFor('role-dev'));
  });
  t.test(`${label}, IMDS endpoint as \`credport env --imds\` prints it and as AWS documents it`, needs(sdk), async (tt) => {
    if (!assertPresent(tt, sdk)) return;
    check(tt, await run({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }), GO_SOURCE.imds, `${label} IMDS, endpoint with "/"`);
    check(tt, await run({ AWS_EC2_METADATA_SERVICE_ENDPOINT: daemonUrl(stack) }), GO_SOURCE.imds, `${label} IMDS, endpoint without "/"`);
  });
  t.test(`${label} with a wrong container token gets nothing`, needs(sdk), async (tt) => {
    // The control: the same binary, refused by the daemon, has no credentials (IMDS off so it does not
    // wait on 169.254.169.254).
    if (!assertPresent(tt, sdk)) return;
    const got = await run({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
      AWS_CONTAINER_AUTHORIZATION_TOKEN: 'not-the-token',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    tt.ok(got instanceof Error, 'no credentials with a wrong token');
  });
}
