// The AWS SDK for JavaScript v3, unmodified, gets the emulator's credentials through credport on both
// endpoints: the ECS container endpoint (fromHttp, fromContainerMetadata) and the IMDSv2 one
// (fromInstanceMetadata), alone and as picked by the default node chain from the environment.

import t, { type Test } from 'tap';
import { fromHttp } from '@aws-sdk/credential-providers';
import { roleArnFor, startStack } from './helpers/stack.js';
import {
  EmptyHome,
  assertClientGot,
  cleanEnv,
  containerUri,
  forgetAwsEnvironment,
  imdsEndpoint,
  parseCredentials,
  runChild,
  type ClientCredentials,
} from './helpers/clients.js';

forgetAwsEnvironment();

// Children import the very package this test compiled against, wherever their working directory is.
const PROVIDERS_URL = import.meta.resolve('@aws-sdk/credential-providers');

const stack = await startStack({ profiles: { default: {}, dev: {} } });
const home = new EmptyHome();
t.teardown(async () => {
  await stack.close();
  home.remove();
});

type Identity = Awaited<ReturnType<ReturnType<typeof fromHttp>>>;

function toClient(c: Identity): ClientCredentials {
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken ?? '',
    ...(c.expiration ? { expiration: c.expiration.toISOString() } : {}),
  };
}

/**
 * Runs `provider` (an expression over the imported module `m` that yields a provider function) in a
 * fresh node process whose environment is only `vars` (plus PATH and HOME), and returns what it got.
 */
async function inChild(provider: string, vars: Record<string, string>): Promise<ClientCredentials | Error> {
  const script = `
    const m = await import(${JSON.stringify(PROVIDERS_URL)});
    const c = await (${provider})();
    process.stdout.write(JSON.stringify({
      accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken,
      expiration: c.expiration ? c.expiration.toISOString() : undefined,
    }));
  `;
  const r = await runChild(process.execPath, ['--input-type=module', '-e', script], cleanEnv(home, vars), home.dir);
  return parseCredentials(r);
}

const check = (tt: Test, got: ClientCredentials | Error, what: string, roleArn?: string): void =>
  assertClientGot(tt, stack, got, what, roleArn);

const containerVars = (): Record<string, string> => ({
  AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
  AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token(),
});

t.test('fromHttp with a full URI and the token inline', async (tt) => {
  const c = await fromHttp({ awsContainerCredentialsFullUri: containerUri(stack), awsContainerAuthorizationToken: stack.token() })();
  check(tt, toClient(c), 'fromHttp inline token');
});

t.test('fromHttp with a full URI and the token file', async (tt) => {
  const c = await fromHttp({
    awsContainerCredentialsFullUri: containerUri(stack),
    awsContainerAuthorizationTokenFile: stack.config.daemon.tokenFile,
  })();
  check(tt, toClient(c), 'fromHttp token file');
});

t.test("fromHttp with a named profile gets that profile's role", async (tt) => {
  const token = stack.token();
  const dev = toClient(
    await fromHttp({ awsContainerCredentialsFullUri: containerUri(stack, 'dev'), awsContainerAuthorizationToken: token })(),
  );
  check(tt, dev, 'fromHttp /v1/credentials/dev', roleArnFor('role-dev'));
  const def = toClient(await fromHttp({ awsContainerCredentialsFullUri: containerUri(stack), awsContainerAuthorizationToken: token })());
  tt.not(dev.accessKeyId, def.accessKeyId, 'the named profile and the default are different credentials');
});

t.test("fromHttp with a wrong token is refused with the daemon's error code", async (tt) => {
  // The control for the tests above: the SDK does not get credentials from a daemon that refuses it.
  const failed = await fromHttp({
    awsContainerCredentialsFullUri: containerUri(stack),
    awsContainerAuthorizationToken: 'not-the-token',
    maxRetries: 0,
  })().then(
    () => undefined,
    (err: unknown) => err as { Code?: string },
  );
  tt.ok(failed, 'the provider rejects');
  tt.equal(failed?.Code, 'InvalidToken', 'the SDK surfaces the Code of the JSON error body');
});

t.test('fromContainerMetadata from AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN', async (tt) => {
  check(tt, await inChild('m.fromContainerMetadata()', containerVars()), 'fromContainerMetadata');
});

t.test('fromContainerMetadata with a named profile in the URI', async (tt) => {
  const got = await inChild('m.fromContainerMetadata()', {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack, 'dev'),
    AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token(),
  });
  check(tt, got, 'fromContainerMetadata /v1/credentials/dev', roleArnFor('role-dev'));
});

t.test('fromInstanceMetadata from AWS_EC2_METADATA_SERVICE_ENDPOINT', async (tt) => {
  check(tt, await inChild('m.fromInstanceMetadata()', { AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }), 'fromInstanceMetadata');
});

t.test('default node chain with only the container variables (inline token)', async (tt) => {
  check(tt, await inChild('m.fromNodeProviderChain()', containerVars()), 'fromNodeProviderChain, container, inline token');
});

t.test('default node chain with only the container variables (token file)', async (tt) => {
  const got = await inChild('m.fromNodeProviderChain()', {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: stack.config.daemon.tokenFile,
  });
  check(tt, got, 'fromNodeProviderChain, container, token file');
});

t.test('default node chain with a named profile in the container URI', async (tt) => {
  const got = await inChild('m.fromNodeProviderChain()', {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack, 'dev'),
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: stack.config.daemon.tokenFile,
  });
  check(tt, got, 'fromNodeProviderChain, /v1/credentials/dev', roleArnFor('role-dev'));
});

t.test('default node chain with only the IMDS endpoint variable', async (tt) => {
  check(
    tt,
    await inChild('m.fromNodeProviderChain()', { AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }),
    'fromNodeProviderChain, IMDS',
  );
});

t.test('the child environment really is empty of credentials', async (tt) => {
  // The control for the child tests: with neither endpoint set (and IMDS switched off so the chain does
  // not wait on 169.254.169.254), the chain finds nothing, so what the tests above got came from credport.
  const got = await inChild('m.fromNodeProviderChain()', { AWS_EC2_METADATA_DISABLED: 'true' });
  tt.ok(got instanceof Error, 'no credentials without credport');
});
