/**
 * What the client tests share: running a real client as a child process in an
 * environment that holds nothing but what the test sets, and checking that what
 * the client ended up with is exactly what the emulator minted.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { roleArnFor, type Stack } from './stack.js';

/** Credentials as a client reported them; expiration only where the client exposes it. */
export interface ClientCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** ISO 8601, as the client printed it. */
  expiration?: string;
  /** Which of its credential sources the client says it used, where it says (botocore's `method`). */
  source?: string;
  /** The account the client attributes the credentials to, where it reads AccountId (botocore 1.3x+). */
  accountId?: string;
}

/**
 * Asserts the client holds credentials the emulator issued, byte for byte: a
 * client that got something non-empty but different (a stale cache, another
 * source on the machine, a mangled token) fails here.
 */
export function assertIssued(t: Test, stack: Stack, got: ClientCredentials, what: string): void {
  const issued = stack.emulator.issued(got.accessKeyId);
  if (!issued) {
    t.fail(`${what}: access key ${got.accessKeyId} was not issued by the emulator`);
    return;
  }
  t.equal(got.secretAccessKey, issued.secretAccessKey, `${what}: secret key is the one the emulator issued`);
  t.equal(got.sessionToken, issued.sessionToken, `${what}: session token is the one the emulator issued`);
  if (got.expiration !== undefined) {
    t.equal(new Date(got.expiration).getTime(), issued.expiration.getTime(), `${what}: expiration is the one the emulator issued`);
  }
}

/**
 * What a client run produced (credentials, or why there were none) checked against the emulator's
 * record, including that they belong to the role of the profile the client asked for.
 */
export function assertClientGot(
  t: Test,
  stack: Stack,
  got: ClientCredentials | Error,
  what: string,
  roleArn = roleArnFor('role-default'),
): void {
  if (got instanceof Error) {
    t.fail(`${what}: ${got.message}`);
    return;
  }
  assertIssued(t, stack, got, what);
  t.equal(stack.emulator.issued(got.accessKeyId)?.roleArn, roleArn, `${what}: credentials are for ${roleArn}`);
}

/**
 * For tests that run an SDK provider in this process: fromHttp falls back to process.env for whatever
 * its options leave out (and a relative URI there even wins over the full URI given as an option), so
 * a developer's shell already pointing at a credport would let such a test pass for the wrong reason.
 * Each tap file is its own process, so forgetting these settings affects that file only.
 */
export function forgetAwsEnvironment(): void {
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
}

/**
 * A HOME with nothing in it, so ~/.aws/config, ~/.aws/credentials, SSO caches
 * and the like on the developer's machine cannot answer in place of the daemon.
 */
export class EmptyHome {
  readonly dir = mkdtempSync(join(tmpdir(), 'credport-client-home-'));
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The whole environment of a child client: PATH and HOME plus what the test
 * passes. Nothing is inherited, so AWS_PROFILE, AWS_ACCESS_KEY_ID,
 * AWS_EC2_METADATA_DISABLED, NODE_OPTIONS, PYTHONPATH and friends are unset. The
 * shared config and credentials files are pointed inside the empty HOME
 * explicitly, in case a client looks somewhere other than $HOME/.aws.
 */
export function cleanEnv(home: EmptyHome, vars: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home.dir,
    LANG: 'C.UTF-8',
    AWS_CONFIG_FILE: join(home.dir, '.aws', 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home.dir, '.aws', 'credentials'),
    ...vars,
  };
}

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client asynchronously: the daemon runs in this process, so a
 * synchronous spawn would freeze the very server the client is calling.
 */
export function runChild(file: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs = 30_000): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parses the one JSON object a child printed, or explains why not (with its stderr). */
export function parseCredentials(r: ChildResult): ClientCredentials | Error {
  if (r.code !== 0) return new Error(`client exited with ${String(r.code)}: ${r.stderr.slice(-2000)}`);
  try {
    const o = JSON.parse(r.stdout) as Record<string, unknown>;
    const str = (k: string): string => {
      const v = o[k];
      if (typeof v !== 'string' || v === '') throw new Error(`missing ${k}`);
      return v;
    };
    return {
      accessKeyId: str('accessKeyId'),
      secretAccessKey: str('secretAccessKey'),
      sessionToken: str('sessionToken'),
      ...(typeof o.expiration === 'string' ? { expiration: o.expiration } : {}),
      ...(typeof o.source === 'string' ? { source: o.source } : {}),
      ...(typeof o.accountId === 'string' ? { accountId: o.accountId } : {}),
    };
  } catch (err) {
    return new Error(
      `client printed no credentials (${(err as Error).message}): stdout ${r.stdout.slice(0, 500)} stderr ${r.stderr.slice(-2000)}`,
    );
  }
}

/** What clients put in AWS_CONTAINER_CREDENTIALS_FULL_URI for a profile (or the default). */
export function containerUri(stack: Stack, profile?: string): string {
  const url = stack.daemon?.url;
  if (!url) throw new Error('the stack has no running daemon');
  return `${url}/v1/credentials${profile === undefined ? '' : `/${encodeURIComponent(profile)}`}`;
}

export function daemonUrl(stack: Stack): string {
  const url = stack.daemon?.url;
  if (!url) throw new Error('the stack has no running daemon');
  return url;
}

/**
 * AWS_EC2_METADATA_SERVICE_ENDPOINT as `credport env --imds` prints it: with a trailing slash, because
 * the AWS CLI 2.9 appends `latest/api/token` with no separator (without the slash it asks for
 * http://127.0.0.1:PORTlatest/api/token and gives up).
 */
export function imdsEndpoint(stack: Stack): string {
  return `${daemonUrl(stack)}/`;
}

/** The IMDS role name: the last segment of the default profile's role ARN, as the daemon serves it. */
export const DEFAULT_ROLE = 'role-default';

/** Fetches the IMDS credentials the way every SDK does: PUT a session token, then GET with it. */
export async function imdsCredentials(baseUrl: string, role = DEFAULT_ROLE): Promise<{ status: number; body: Record<string, unknown> }> {
  const put = await fetch(`${baseUrl}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
  if (put.status !== 200) return { status: put.status, body: { text: await put.text() } };
  const token = await put.text();
  const res = await fetch(`${baseUrl}/latest/meta-data/iam/security-credentials/${role}`, {
    headers: { 'x-aws-ec2-metadata-token': token },
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, body: { text } };
  }
}
