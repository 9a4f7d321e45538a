// The AWS SDK for JavaScript v2 (npm aws-sdk@2), unmodified, gets the emulator's credentials through
// credport on both endpoints: EC2MetadataCredentials over IMDSv2 (it joins the endpoint and the path
// with no care for slashes, so `credport env --imds`'s "http://127.0.0.1:PORT/" becomes "//latest/...",
// which credport now serves as real IMDS does) and RemoteCredentials (alias ECSCredentials) over the
// container endpoint, alone and as the default CredentialProviderChain picks them from the environment.

import t, { type Test } from 'tap';
import { roleArnFor, startStack } from './helpers/stack.js';
import { assertPresent, needs, tool } from './helpers/tools.js';
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
} from './helpers/clients.js';

/** Where the package is, resolved from this file as the children will import it; undefined if absent. */
function resolveSdk(): string | undefined {
  try {
    return import.meta.resolve('aws-sdk');
  } catch {
    return undefined;
  }
}
const SDK_URL = resolveSdk();
const jsSdkV2 = tool('AWS SDK for JavaScript v2 (npm aws-sdk@2, a devDependency)', () => SDK_URL !== undefined, 'npm install');

const stack = await startStack({ profiles: { default: {}, dev: {} } });
const home = new EmptyHome();
t.teardown(async () => {
  await stack.close();
  home.remove();
});

/**
 * Runs `credentials` (an expression over the SDK's namespace `AWS` that yields an AWS.Credentials) in a
 * fresh node process whose environment is only `vars` (plus PATH and HOME), and returns what it got.
 */
async function inChild(credentials: string, vars: Record<string, string>): Promise<ClientCredentials | Error> {
  const script = `
    const AWS = (await import(${JSON.stringify(SDK_URL)})).default;
    const c = await (${credentials});
    await c.getPromise();
    process.stdout.write(JSON.stringify({
      accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken,
      expiration: c.expireTime ? c.expireTime.toISOString() : undefined,
    }));
  `;
  // The v2 SDK prints its maintenance-mode notice on stderr; stdout carries only the JSON.
  return parseCredentials(await runChild(process.execPath, ['--input-type=module', '-e', script], cleanEnv(home, vars), home.dir));
}

const check = (tt: Test, got: ClientCredentials | Error, what: string, roleArn?: string): void =>
  assertClientGot(tt, stack, got, what, roleArn);
const IMDS = 'new AWS.EC2MetadataCredentials({ maxRetries: 0 })';
const ECS = 'new AWS.RemoteCredentials({ maxRetries: 0 })';
const CHAIN = 'new AWS.CredentialProviderChain().resolvePromise()';

t.test('EC2MetadataCredentials with the endpoint `credport env --imds` prints (trailing "/")', needs(jsSdkV2), async (tt) => {
  if (!assertPresent(tt, jsSdkV2)) return;
  check(tt, await inChild(IMDS, { AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }), 'JS v2 IMDS, endpoint with "/"');
});

t.test('EC2MetadataCredentials with the endpoint as AWS documents it (no trailing "/")', needs(jsSdkV2), async (tt) => {
  if (!assertPresent(tt, jsSdkV2)) return;
  check(tt, await inChild(IMDS, { AWS_EC2_METADATA_SERVICE_ENDPOINT: daemonUrl(stack) }), 'JS v2 IMDS, endpoint without "/"');
});

t.test('RemoteCredentials with the full URI and the token inline', needs(jsSdkV2), async (tt) => {
  if (!assertPresent(tt, jsSdkV2)) return;
  const got = await inChild(ECS, {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
    AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token(),
  });
  check(tt, got, 'JS v2 container, inline token');
});

t.test('ECSCredentials with the full URI and the token file, for a named profile', needs(jsSdkV2), async (tt) => {
  if (!assertPresent(tt, jsSdkV2)) return;
  const got = await inChild('new AWS.ECSCredentials({ maxRetries: 0 })', {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack, 'dev'),
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: stack.config.daemon.tokenFile,
  });
  check(tt, got, 'JS v2 /v1/credentials/dev, token file', roleArnFor('role-dev'));
});

t.test('the default CredentialProviderChain finds either endpoint from the environment', needs(jsSdkV2), async (tt) => {
  if (!assertPresent(tt, jsSdkV2)) return;
  const container = await inChild(CHAIN, {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: stack.config.daemon.tokenFile,
  });
  check(tt, container, 'JS v2 chain, container');
  check(tt, await inChild(CHAIN, { AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }), 'JS v2 chain, IMDS');
});

t.test('a wrong container token gets nothing', needs(jsSdkV2), async (tt) => {
  // The control: the same SDK and environment, refused by the daemon, has no credentials.
  if (!assertPresent(tt, jsSdkV2)) return;
  const got = await inChild(ECS, {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
    AWS_CONTAINER_AUTHORIZATION_TOKEN: 'not-the-token',
  });
  tt.ok(got instanceof Error, 'no credentials with a wrong token');
});
