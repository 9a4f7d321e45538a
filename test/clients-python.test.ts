// boto3/botocore, unmodified, get the emulator's credentials through credport on both endpoints. Two
// generations are driven because they differ where it matters: Debian's botocore 1.29 accepts only
// localhost and 127.0.0.1 as a plain-http container host and knows no token file; the pip botocore
// (1.4x) reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and prefers it.

import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { ACCOUNT, roleArnFor, startStack } from './helpers/stack.js';
import { assertPresent, debianBoto3, needs, pipBoto3 } from './helpers/tools.js';
import {
  EmptyHome,
  assertClientGot,
  cleanEnv,
  containerUri,
  imdsEndpoint,
  parseCredentials,
  runChild,
  type ClientCredentials,
} from './helpers/clients.js';

// What a user's script would do. `method` is botocore's public name for the source that answered
// ('container-role' for the ECS endpoint, 'iam-role' for IMDS), so the test knows which path was taken.
const SCRIPT = `
import json, sys
import boto3
creds = boto3.Session().get_credentials()
if creds is None:
    sys.exit("boto3 found no credentials")
f = creds.get_frozen_credentials()
print(json.dumps({"accessKeyId": f.access_key, "secretAccessKey": f.secret_key, "sessionToken": f.token,
                  "source": creds.method, "accountId": getattr(f, "account_id", None)}))
`;

const DEBIAN_PYTHON = '/usr/bin/python3';

/**
 * The interpreter `python3` on PATH stands for, resolved once here: on PATH it may be a pyenv shim,
 * which needs pyenv's own environment, and the child gets a clean one.
 */
function pipPython(): string | undefined {
  if (!pipBoto3.present) return undefined;
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path !== '' ? path : undefined;
}
const PIP_PYTHON = pipPython();

const stack = await startStack({ profiles: { default: {}, dev: {} } });
const home = new EmptyHome();
t.teardown(async () => {
  await stack.close();
  home.remove();
});

async function boto3In(python: string, vars: Record<string, string>): Promise<ClientCredentials | Error> {
  // -I: isolated mode, so PYTHON* variables and the user's site-packages cannot change what is imported.
  return parseCredentials(await runChild(python, ['-I', '-c', SCRIPT], cleanEnv(home, vars), home.dir));
}

function check(tt: Test, got: ClientCredentials | Error, source: string, what: string, roleArn?: string): void {
  assertClientGot(tt, stack, got, what, roleArn);
  if (!(got instanceof Error)) tt.equal(got.source, source, `${what}: botocore used its ${source} provider`);
}

const inlineToken = (profile?: string): Record<string, string> => ({
  AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack, profile),
  AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token(),
});
// IMDS alone: no AWS_CONTAINER_* at all, or botocore would take the container path first.
const imdsOnly = (): Record<string, string> => ({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) });

t.test('Debian boto3 (botocore 1.29), container endpoint, inline token', needs(debianBoto3), async (tt) => {
  if (!assertPresent(tt, debianBoto3)) return;
  check(tt, await boto3In(DEBIAN_PYTHON, inlineToken()), 'container-role', 'Debian boto3 container');
});

t.test('Debian boto3 (botocore 1.29), IMDS endpoint', needs(debianBoto3), async (tt) => {
  if (!assertPresent(tt, debianBoto3)) return;
  check(tt, await boto3In(DEBIAN_PYTHON, imdsOnly()), 'iam-role', 'Debian boto3 IMDS');
});

t.test('pip boto3, container endpoint, token file', needs(pipBoto3), async (tt) => {
  if (!assertPresent(tt, pipBoto3) || !PIP_PYTHON) return;
  const got = await boto3In(PIP_PYTHON, {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: stack.config.daemon.tokenFile,
  });
  check(tt, got, 'container-role', 'pip boto3 container, token file');
  // Newer botocore reads the optional AccountId of the container body (for account-based endpoints).
  if (!(got instanceof Error)) tt.equal(got.accountId, ACCOUNT, 'botocore took the account from AccountId');
});

t.test('pip boto3, container endpoint, inline token', needs(pipBoto3), async (tt) => {
  if (!assertPresent(tt, pipBoto3) || !PIP_PYTHON) return;
  check(tt, await boto3In(PIP_PYTHON, inlineToken()), 'container-role', 'pip boto3 container, inline token');
});

t.test('pip boto3, container endpoint, named profile', needs(pipBoto3), async (tt) => {
  if (!assertPresent(tt, pipBoto3) || !PIP_PYTHON) return;
  check(tt, await boto3In(PIP_PYTHON, inlineToken('dev')), 'container-role', 'pip boto3 /v1/credentials/dev', roleArnFor('role-dev'));
});

t.test('pip boto3, IMDS endpoint', needs(pipBoto3), async (tt) => {
  if (!assertPresent(tt, pipBoto3) || !PIP_PYTHON) return;
  check(tt, await boto3In(PIP_PYTHON, imdsOnly()), 'iam-role', 'pip boto3 IMDS');
});

t.test('the child environment really is empty of credentials', needs(pipBoto3), async (tt) => {
  // The control: the same interpreter and environment, minus credport, finds nothing (IMDS switched
  // off so it does not wait on 169.254.169.254).
  if (!assertPresent(tt, pipBoto3) || !PIP_PYTHON) return;
  const got = await boto3In(PIP_PYTHON, { AWS_EC2_METADATA_DISABLED: 'true' });
  tt.ok(got instanceof Error, 'no credentials without credport');
});
