// The AWS SDK for Ruby v3 (Debian's ruby-aws-sdk-core 3.168), unmodified, gets the emulator's
// credentials through credport over IMDSv2, the one credport endpoint it supports: its token PUT carries
// a form Content-Type, which real IMDS accepts and credport now does too. Its ECSCredentials (in this
// release) knows only a relative URI on 169.254.170.2 and sends no Authorization header, so it cannot
// use credport's container endpoint; the last test shows the daemon refuses it rather than serving it.
// This release also connects to port 80 whatever port the endpoint names (its :port option defaults to
// 80 and wins), so the port is passed as an option; the environment variable alone (the default chain,
// which passes no port) serves only a daemon on port 80.

import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { roleArnFor, startStack } from './helpers/stack.js';
import { assertPresent, needs, tool } from './helpers/tools.js';
import {
  EmptyHome,
  assertClientGot,
  cleanEnv,
  daemonUrl,
  imdsEndpoint,
  parseCredentials,
  runChild,
  type ClientCredentials,
} from './helpers/clients.js';

const RUBY = '/usr/bin/ruby';
const rubySdk = tool(
  'Debian ruby-aws-sdk-core (AWS SDK for Ruby v3)',
  () => existsSync(RUBY) && existsSync('/usr/share/rubygems-integration/all/gems/aws-sdk-core-3.168.1'),
  'apt-get install ruby-aws-sdk-core',
);

// `provider` is Ruby that builds a credentials provider; the script prints what it holds. An empty
// provider (the SDK swallows fetch errors) prints nulls, which the test reads as "no credentials".
const script = (provider: string): string => `
require 'aws-sdk-core'
require 'json'
p = ${provider}
c = p.respond_to?(:credentials) ? p.credentials : p
exp = p.respond_to?(:expiration) && p.expiration ? p.expiration.utc.iso8601 : nil
puts JSON.generate(accessKeyId: c && c.access_key_id, secretAccessKey: c && c.secret_access_key,
                   sessionToken: c && c.session_token, expiration: exp, source: p.class.name)
`;

const stack = await startStack({ profiles: { default: {}, dev: {} } });
const home = new EmptyHome();
t.teardown(async () => {
  await stack.close();
  home.remove();
});

async function ruby(provider: string, vars: Record<string, string> = {}): Promise<ClientCredentials | Error> {
  // --disable-gems is not used: aws-sdk-core is found through Debian's rubygems integration.
  return parseCredentials(await runChild(RUBY, ['-e', script(provider)], cleanEnv(home, vars), home.dir));
}

function check(tt: Test, got: ClientCredentials | Error, what: string): void {
  assertClientGot(tt, stack, got, what, roleArnFor('role-default'));
  if (!(got instanceof Error)) tt.equal(got.source, 'Aws::InstanceProfileCredentials', `${what}: the SDK used InstanceProfileCredentials`);
}

const imds = (endpoint: string): string =>
  `Aws::InstanceProfileCredentials.new(endpoint: ${JSON.stringify(endpoint)}, port: ${stack.daemon!.port}, retries: 0)`;

t.test('Ruby SDK v3, InstanceProfileCredentials with the endpoint `credport env --imds` prints', needs(rubySdk), async (tt) => {
  if (!assertPresent(tt, rubySdk)) return;
  check(tt, await ruby(imds(imdsEndpoint(stack))), 'Ruby IMDS, endpoint with "/"');
});

t.test('Ruby SDK v3, InstanceProfileCredentials with the endpoint as AWS documents it', needs(rubySdk), async (tt) => {
  if (!assertPresent(tt, rubySdk)) return;
  check(tt, await ruby(imds(daemonUrl(stack))), 'Ruby IMDS, endpoint without "/"');
});

t.test('Ruby SDK v3 ECSCredentials, which sends no token, gets nothing from the container endpoint', needs(rubySdk), async (tt) => {
  if (!assertPresent(tt, rubySdk)) return;
  const port = stack.daemon!.port;
  const got = await ruby(
    `Aws::ECSCredentials.new(ip_address: '127.0.0.1', port: ${port}, credential_path: '/v1/credentials', retries: 0, backoff: 0)`,
  );
  tt.ok(got instanceof Error, 'no credentials without the daemon token');
});
