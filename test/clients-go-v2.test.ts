// The AWS SDK for Go v2 (Debian's 1.17, config module 1.17.10), unmodified, gets the emulator's
// credentials through credport on both endpoints it supports: the ECS container endpoint (full URI,
// inline token: this release knows no token file) and IMDSv2, each found by config.LoadDefaultConfig's
// chain from the environment alone.

import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { roleArnFor, startStack } from './helpers/stack.js';
import { assertPresent, needs } from './helpers/tools.js';
import { EmptyHome, assertClientGot, cleanEnv, containerUri, daemonUrl, imdsEndpoint, parseCredentials, runChild, type ClientCredentials } from './helpers/clients.js';
import { GO_SOURCE, buildGoClient, goSdkV2 } from './helpers/go-client.js';

const stack = await startStack({ profiles: { default: {}, dev: {} } });
const home = new EmptyHome();
const bin = mkdtempSync(join(tmpdir(), 'credport-go-v2-'));
t.teardown(async () => {
  await stack.close();
  home.remove();
  rmSync(bin, { recursive: true, force: true });
});

const client = goSdkV2.present ? await buildGoClient('go-sdk-v2', bin) : new Error(goSdkV2.why);

async function run(vars: Record<string, string>): Promise<ClientCredentials | Error> {
  if (client instanceof Error) return client;
  return parseCredentials(await runChild(client, [], cleanEnv(home, { AWS_REGION: 'us-east-1', ...vars }), home.dir));
}

function check(tt: Test, got: ClientCredentials | Error, source: string, what: string, roleArn?: string): void {
  assertClientGot(tt, stack, got, what, roleArn);
  if (!(got instanceof Error)) tt.equal(got.source, source, `${what}: the SDK used its ${source}`);
}

t.test('Go SDK v2, container endpoint, inline token', needs(goSdkV2), async (tt) => {
  if (!assertPresent(tt, goSdkV2)) return;
  const got = await run({ AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack), AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token() });
  check(tt, got, GO_SOURCE.ecs, 'Go v2 container');
});

t.test('Go SDK v2, container endpoint, named profile', needs(goSdkV2), async (tt) => {
  if (!assertPresent(tt, goSdkV2)) return;
  const got = await run({ AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack, 'dev'), AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token() });
  check(tt, got, GO_SOURCE.ecs, 'Go v2 /v1/credentials/dev', roleArnFor('role-dev'));
});

t.test('Go SDK v2, IMDS endpoint as `credport env --imds` prints it and as AWS documents it', needs(goSdkV2), async (tt) => {
  if (!assertPresent(tt, goSdkV2)) return;
  check(tt, await run({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }), GO_SOURCE.imds, 'Go v2 IMDS, endpoint with "/"');
  check(tt, await run({ AWS_EC2_METADATA_SERVICE_ENDPOINT: daemonUrl(stack) }), GO_SOURCE.imds, 'Go v2 IMDS, endpoint without "/"');
});

t.test('Go SDK v2 with a wrong container token gets nothing', needs(goSdkV2), async (tt) => {
  // The control: the same binary, refused by the daemon, has no credentials (IMDS off so it does not
  // wait on 169.254.169.254).
  if (!assertPresent(tt, goSdkV2)) return;
  const got = await run({ AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack), AWS_CONTAINER_AUTHORIZATION_TOKEN: 'not-the-token', AWS_EC2_METADATA_DISABLED: 'true' });
  tt.ok(got instanceof Error, 'no credentials with a wrong token');
});
