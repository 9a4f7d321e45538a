// Debian's AWS CLI (2.9, on its own copy of an older botocore), unmodified, gets the emulator's
// credentials through credport on both endpoints. `aws configure export-credentials` prints what the
// CLI's own credential resolution found, so no AWS API (and no network beyond loopback) is involved.

import t, { type Test } from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStack } from './helpers/stack.js';
import { assertPresent, debianAws, needs } from './helpers/tools.js';
import {
  EmptyHome,
  assertClientGot,
  cleanEnv,
  containerUri,
  imdsEndpoint,
  runChild,
  type ChildResult,
  type ClientCredentials,
} from './helpers/clients.js';

const AWS = '/usr/bin/aws';

const stack = await startStack();
const home = new EmptyHome();
t.teardown(async () => {
  await stack.close();
  home.remove();
});

/** The credential_process JSON the CLI prints, in the shape the other client tests use. */
function processOutput(r: ChildResult): ClientCredentials | Error {
  if (r.code !== 0) return new Error(`aws exited with ${String(r.code)}: ${r.stderr.slice(-2000)}`);
  try {
    const o = JSON.parse(r.stdout) as {
      Version?: unknown;
      AccessKeyId?: unknown;
      SecretAccessKey?: unknown;
      SessionToken?: unknown;
      Expiration?: unknown;
    };
    if (o.Version !== 1) throw new Error(`Version is ${String(o.Version)}, not 1`);
    const { AccessKeyId: id, SecretAccessKey: secret, SessionToken: token, Expiration: expiration } = o;
    if (typeof id !== 'string' || typeof secret !== 'string' || typeof token !== 'string' || typeof expiration !== 'string') {
      throw new Error('a field is missing');
    }
    return { accessKeyId: id, secretAccessKey: secret, sessionToken: token, expiration };
  } catch (err) {
    return new Error(
      `aws printed no credentials (${(err as Error).message}): stdout ${r.stdout.slice(0, 500)} stderr ${r.stderr.slice(-2000)}`,
    );
  }
}

async function exportCredentials(vars: Record<string, string>): Promise<ClientCredentials | Error> {
  // AWS_PAGER='' keeps the CLI from piping through less; the region keeps it from looking one up.
  const env = cleanEnv(home, { AWS_REGION: 'us-east-1', AWS_PAGER: '', ...vars });
  return processOutput(await runChild(AWS, ['configure', 'export-credentials', '--format', 'process'], env, home.dir));
}

const check = (tt: Test, got: ClientCredentials | Error, what: string): void => assertClientGot(tt, stack, got, what);

/** What a signed request says about the credentials and region it was signed with. */
interface SignedRequest {
  accessKeyId: string;
  region: string;
  service: string;
  securityToken: string | undefined;
}

/**
 * A stand-in AWS endpoint on loopback that records who signed each request (from the SigV4
 * Authorization header) and refuses it, so a real CLI command can run without touching AWS.
 */
async function signedRequestRecorder(): Promise<{ url: string; requests: SignedRequest[]; close(): Promise<void> }> {
  const requests: SignedRequest[] = [];
  const server = createServer((req, res) => {
    const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(req.headers.authorization ?? '');
    if (m?.[1] && m[2] && m[3]) {
      const token = req.headers['x-amz-security-token'];
      requests.push({ accessKeyId: m[1], region: m[2], service: m[3], securityToken: typeof token === 'string' ? token : undefined });
    }
    req.resume();
    const body =
      '<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>recorded by the test</Message></Error></Errors><RequestID>test</RequestID></Response>';
    res.writeHead(403, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Runs `aws ec2 describe-regions` against the recorder and returns what it recorded. */
async function signedCall(vars: Record<string, string>): Promise<SignedRequest[]> {
  const recorder = await signedRequestRecorder();
  try {
    const env = cleanEnv(home, { AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1', ...vars });
    await runChild(AWS, ['ec2', 'describe-regions', '--endpoint-url', recorder.url], env, home.dir);
    return recorder.requests;
  } finally {
    await recorder.close();
  }
}

function checkSigned(tt: Test, requests: SignedRequest[], what: string): void {
  const r = requests[0];
  tt.ok(r, `${what}: the CLI sent a signed request`);
  if (!r) return;
  const issued = stack.emulator.issued(r.accessKeyId);
  tt.ok(issued, `${what}: signed with an access key the emulator issued`);
  tt.equal(r.securityToken, issued?.sessionToken, `${what}: with the emulator's session token`);
  tt.equal(r.service, 'ec2', `${what}: for the service called`);
  tt.equal(r.region, 'us-east-1', `${what}: in the profile's region`);
}

t.test('aws configure export-credentials via the container endpoint (inline token)', needs(debianAws), async (tt) => {
  if (!assertPresent(tt, debianAws)) return;
  const got = await exportCredentials({
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
    AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token(),
  });
  check(tt, got, 'aws cli container');
});

t.test('aws configure export-credentials via IMDS', needs(debianAws), async (tt) => {
  if (!assertPresent(tt, debianAws)) return;
  check(tt, await exportCredentials({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) }), 'aws cli IMDS');
});

t.test('aws configure export-credentials finds nothing without credport', needs(debianAws), async (tt) => {
  // The control: the same environment minus credport gives the CLI no credentials, so the tests above
  // got theirs from the daemon.
  if (!assertPresent(tt, debianAws)) return;
  const got = await exportCredentials({ AWS_EC2_METADATA_DISABLED: 'true' });
  tt.ok(got instanceof Error, 'no credentials without credport');
});

t.test('aws signs a real API call with the credentials from the container endpoint', needs(debianAws), async (tt) => {
  if (!assertPresent(tt, debianAws)) return;
  const requests = await signedCall({
    AWS_REGION: 'us-east-1',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: containerUri(stack),
    AWS_CONTAINER_AUTHORIZATION_TOKEN: stack.token(),
  });
  checkSigned(tt, requests, 'aws ec2 via container');
});

t.test('aws with only the IMDS endpoint learns its region from IMDS, as on EC2', needs(debianAws), async (tt) => {
  // No AWS_REGION: the CLI v2 asks IMDS for latest/meta-data/placement/availability-zone/ (with the
  // trailing slash) and drops the zone letter. Real IMDS answers that path; without an answer the CLI
  // stops with "You must specify a region" and sends nothing.
  if (!assertPresent(tt, debianAws)) return;
  const requests = await signedCall({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsEndpoint(stack) });
  checkSigned(tt, requests, 'aws ec2 via IMDS, region from IMDS');
});
