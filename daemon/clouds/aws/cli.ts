/**
 * What the CLI says and does for AWS: the shell exports (`credport env`), the listing (`credport
 * profiles`), the credential_process and env output (`credport auth`), and the doctor's AWS checks.
 */
import { readFileSync } from 'node:fs';
import type { ResolvedConfig } from '../../config/load.js';
import { readTokenFile } from '../../server/token-file.js';
import type { HealthReport } from '../../server/health-report.js';
import type { Credentials } from '../../providers/types.js';
import { CliError, EXIT } from '../../cli/cli-error.js';
import type { Check, CliContext, CloudCli } from '../types.js';
import type { AwsCredentials } from './credentials.js';
import { awsTimestamp } from './endpoints/wire.js';
import { regionalStsEndpoint } from './sts/endpoint.js';
import type { AwsRolesAnywhereProfileConfig } from './schema.js';

/**
 * AWS_CONTAINER_CREDENTIALS_FULL_URI for a profile: the default profile at /v1/credentials, the
 * others at /v1/credentials/NAME. Always an IP literal (127.0.0.1 for localhost) and a non-empty
 * path: SDKs accept a full URI over plain HTTP only for loopback addresses they can see as such.
 */
export function credentialsUrl(baseUrl: string, cfg: ResolvedConfig, profile?: string): string {
  const path = profile === undefined || profile === cfg.defaults.aws ? '/v1/credentials' : `/v1/credentials/${encodeURIComponent(profile)}`;
  return baseUrl + path;
}

interface Wire {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  Expiration: string;
  AccountId?: string;
}

function isWire(v: unknown): v is Wire {
  const o = v as Partial<Wire> | null;
  return (
    typeof o === 'object' && o !== null && [o.AccessKeyId, o.SecretAccessKey, o.Token, o.Expiration].every((x) => typeof x === 'string')
  );
}

async function fromDaemon({ config: cfg, baseUrl }: CliContext, profile: string, command: string): Promise<AwsCredentials | undefined> {
  let token: string;
  try {
    token = readTokenFile(cfg.daemon.tokenFile);
  } catch {
    return undefined; // no token yet: the daemon has never run here
  }
  // Loaded here: `credport env` (the same module) sends nothing, so it needs neither the request nor the listener check.
  const { askDaemon, expectedDaemonUid } = await import('../../cli/daemon-client.js');
  const reply = await askDaemon(
    baseUrl,
    `/v1/credentials/${encodeURIComponent(profile)}`,
    { authorization: token, 'x-credport-command': command },
    3000,
    expectedDaemonUid(cfg),
  );
  if (!reply.reachable) return undefined;
  if (reply.status === 200 && isWire(reply.body)) {
    const b = reply.body;
    return {
      accessKeyId: b.AccessKeyId,
      secretAccessKey: b.SecretAccessKey,
      sessionToken: b.Token,
      expiration: new Date(b.Expiration),
      ...(b.AccountId ? { accountId: b.AccountId } : {}),
    };
  }
  const body = reply.body as { Code?: string; Message?: string };
  throw new CliError(`daemon: ${body.Code ?? reply.status}: ${body.Message ?? 'unexpected answer'}`, EXIT.failure, "see 'credport status'");
}

/** The static-credential environment variables every AWS SDK reads. */
export function credentialEnv(c: AwsCredentials): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_SESSION_TOKEN: c.sessionToken,
    AWS_CREDENTIAL_EXPIRATION: awsTimestamp(c.expiration),
  };
}

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function render(credentials: Credentials, format: string | undefined): string {
  const c = credentials as AwsCredentials;
  const expiration = awsTimestamp(c.expiration);
  if (format === 'env') {
    return `${Object.entries(credentialEnv(c))
      .map(([k, v]) => `export ${k}=${sq(v)}`)
      .join('\n')}\n`;
  }
  const body = {
    ...(format === 'credential_process' ? { Version: 1 } : {}),
    AccessKeyId: c.accessKeyId,
    SecretAccessKey: c.secretAccessKey,
    SessionToken: c.sessionToken,
    Expiration: expiration,
    ...(c.accountId ? { AccountId: c.accountId } : {}),
  };
  return `${JSON.stringify(body, null, format === 'json' ? 2 : undefined)}\n`;
}

async function version(cmd: string, args: string[]): Promise<string | undefined> {
  // Loaded here: only doctor asks, and auth (once per AWS CLI call) should not pay for child_process.
  // Not import(): this module is also in the bundle's CommonJS slim.cjs, where import() would start
  // node's ES module loader.
  const { execFile } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve(err ? undefined : `${stdout}${stderr}`.trim().split('\n')[0]),
    );
  });
}

async function clockCheck(cfg: ResolvedConfig): Promise<Check> {
  const profile = cfg.profiles.get(cfg.defaults.aws ?? '') as { region?: string; sts_endpoint?: string } | undefined;
  const region = profile?.region ?? 'us-east-1';
  const endpoint = profile?.sts_endpoint ?? regionalStsEndpoint(region);
  try {
    const before = Date.now();
    // Only the Date header is wanted: a short deadline and a small body cap, like every upstream call.
    const { boundedFetch } = await import('../../providers/upstream/bounded-fetch.js');
    const res = await boundedFetch(
      endpoint,
      { method: 'GET', headers: {} },
      { service: 'STS', limits: { deadlineMs: 5000, maxBodyBytes: 16 * 1024 } },
    );
    const after = Date.now();
    const date = res.headers.get('date');
    if (!date) return { name: 'clock', status: 'warn', detail: `${endpoint} sent no Date header` };
    // Date has one-second resolution; compare against the middle of the round trip.
    const skew = Math.round((new Date(date).getTime() - (before + after) / 2) / 1000);
    return Math.abs(skew) > 60
      ? {
          name: 'clock',
          status: 'fail',
          detail: `this clock is ${Math.abs(skew)} s ${skew > 0 ? 'behind' : 'ahead of'} ${endpoint}`,
          fix: 'enable time sync (timedatectl set-ntp true / System Settings > Date & Time)',
        }
      : { name: 'clock', status: 'ok', detail: `within ${Math.max(1, Math.abs(skew))} s of ${endpoint}` };
  } catch (err) {
    return {
      name: 'clock',
      status: 'warn',
      detail: `could not reach ${endpoint} (${(err as Error).message})`,
      fix: 'check network access to STS',
    };
  }
}

function envCheck(e: CliContext['env'], base: string): Check[] {
  const out: Check[] = [];
  if (e.AWS_ACCESS_KEY_ID)
    out.push({
      name: 'shell',
      status: 'warn',
      detail: 'AWS_ACCESS_KEY_ID is set: SDKs use it before credport',
      fix: 'unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN',
    });
  if (e.AWS_PROFILE)
    out.push({
      name: 'shell',
      status: 'warn',
      detail: `AWS_PROFILE=${e.AWS_PROFILE}: SDKs read that profile from ~/.aws before the container endpoint`,
      fix: 'unset AWS_PROFILE, or give that profile credential_process = credport auth',
    });
  const uri = e.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  if (!uri && !e.AWS_EC2_METADATA_SERVICE_ENDPOINT) {
    out.push({ name: 'shell', status: 'warn', detail: 'this shell does not point SDKs at credport', fix: 'eval "$(credport env)"' });
  } else if (uri && !uri.startsWith(`${base}/v1/credentials`)) {
    out.push({
      name: 'shell',
      status: 'warn',
      detail: `AWS_CONTAINER_CREDENTIALS_FULL_URI=${uri} is not this daemon (${base})`,
      fix: 'eval "$(credport env)"',
    });
  } else if (uri && !e.AWS_CONTAINER_AUTHORIZATION_TOKEN && !e.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) {
    out.push({
      name: 'shell',
      status: 'fail',
      detail: 'the container URI is set without a token variable: every request will be refused',
      fix: 'eval "$(credport env)"',
    });
  } else {
    out.push({ name: 'shell', status: 'ok', detail: `SDKs are pointed at ${uri ?? e.AWS_EC2_METADATA_SERVICE_ENDPOINT}` });
  }
  return out;
}

/** Certificate expiry for every Roles Anywhere profile: from the daemon when it runs, else from the files. */
export async function certificateChecks(cfg: ResolvedConfig, health: HealthReport | undefined): Promise<Check[]> {
  const out: Check[] = [];
  const days = cfg.daemon.certificate_warning_days;
  for (const [name, profile] of cfg.profiles) {
    if (profile.type !== 'aws-rolesanywhere') continue;
    const p = profile as AwsRolesAnywhereProfileConfig;
    let notAfter: Date | undefined;
    let subject = '';
    const fromDaemon = health?.profiles[name]?.certificate;
    if (fromDaemon) {
      notAfter = new Date(fromDaemon.notAfter);
      subject = fromDaemon.subject;
    } else if (p.certificate !== 'token') {
      try {
        const { describeCertificate } = await import('../../x509/inspect.js');
        const d = describeCertificate(readFileSync(p.certificate, 'utf8'));
        notAfter = d.notAfter;
        subject = d.subject;
      } catch (err) {
        out.push({
          name: 'certificate',
          status: 'fail',
          detail: `profile ${name}: ${p.certificate}: ${(err as Error).message}`,
          fix: "install one with 'credport cert import'",
        });
        continue;
      }
    }
    if (!notAfter) {
      out.push({
        name: 'certificate',
        status: 'warn',
        detail: `profile ${name}: the certificate is on the token; start the daemon to see its expiry`,
      });
      continue;
    }
    const renewal = fromDaemon?.renewal;
    if (renewal) {
      out.push(
        renewal.lastError
          ? {
              name: 'certificate renewal',
              status: 'warn',
              detail: `profile ${name}: ${renewal.method} renewal failed ${renewal.consecutiveFailures} time(s): ${renewal.lastError.code}: ${renewal.lastError.message}; next attempt ${renewal.nextAttempt ?? 'not scheduled'}`,
              fix: `credport cert renew --profile ${name} --now (see docs/rolesanywhere.md)`,
            }
          : {
              name: 'certificate renewal',
              status: 'ok',
              detail: `profile ${name}: ${renewal.method}, next ${renewal.nextAttempt ?? 'not scheduled'}${renewal.lastRenewed ? `, last renewed ${renewal.lastRenewed}` : ''}`,
            },
      );
    }
    const left = Math.floor((notAfter.getTime() - Date.now()) / 86_400_000);
    out.push(
      left < 0
        ? {
            name: 'certificate',
            status: 'fail',
            detail: `profile ${name}: ${subject} expired on ${notAfter.toISOString().slice(0, 10)}`,
            fix: 'credport cert csr, have it signed, credport cert import',
          }
        : left < days
          ? {
              name: 'certificate',
              status: 'warn',
              detail: `profile ${name}: ${subject} expires in ${left} day(s)`,
              fix: 'renew it now: credport cert csr, then cert import',
            }
          : { name: 'certificate', status: 'ok', detail: `profile ${name}: ${subject}, ${left} days left` },
    );
  }
  return out;
}

async function clientChecks(): Promise<Check[]> {
  const out: Check[] = [];
  const aws = await version('aws', ['--version']);
  out.push(aws ? { name: 'aws cli', status: 'ok', detail: aws } : { name: 'aws cli', status: 'warn', detail: 'not found on PATH' });
  // Ask botocore itself whether it reads the token file, rather than guessing from its version.
  const boto = await version('python3', [
    '-c',
    'import botocore, inspect, botocore.credentials as c; print("botocore", botocore.__version__, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" in inspect.getsource(c))',
  ]);
  if (boto) {
    const [, ver, tf] = boto.split(' ');
    const tokenFile = tf === 'True';
    out.push({
      name: 'python',
      status: tokenFile ? 'ok' : 'warn',
      detail: `botocore ${ver ?? '?'}${tokenFile ? ' (reads the token file)' : ': does not read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'}`,
      ...(tokenFile ? {} : { fix: 'eval "$(credport env --inline-token)" for this client' }),
    });
  }
  return out;
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `credport env` for an AWS profile: the container-credentials variables, and IMDS's on request. */
function envLines({ config: cfg, baseUrl }: CliContext, profile: string, flags: Readonly<Record<string, unknown>>): string[] {
  const lines = [`export AWS_CONTAINER_CREDENTIALS_FULL_URI=${shq(credentialsUrl(baseUrl, cfg, profile))}`];
  if (flags['inline-token']) {
    let token: string;
    try {
      token = readTokenFile(cfg.daemon.tokenFile);
    } catch (err) {
      throw new CliError((err as Error).message, EXIT.config, 'start the daemon once (credport serve) to create the token');
    }
    lines.push(`export AWS_CONTAINER_AUTHORIZATION_TOKEN=${shq(token)}`);
    lines.push('unset AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE');
  } else {
    lines.push(`export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=${shq(cfg.daemon.tokenFile)}`);
    lines.push('unset AWS_CONTAINER_AUTHORIZATION_TOKEN');
  }
  // A relative URI would win over the full one in some SDKs.
  lines.push('unset AWS_CONTAINER_CREDENTIALS_RELATIVE_URI');
  // AWS documents the endpoint without a trailing slash, and the daemon serves both that form and the
  // "//latest/..." paths the JS SDK v2 makes of a slash. The slash is printed anyway because
  // clients that append "latest/api/token" with no separator (Debian 12's awscli 2.9) can use no other
  // form, and no tested client refuses it (docs/clients.md).
  if (flags.imds) lines.push(`export AWS_EC2_METADATA_SERVICE_ENDPOINT=${shq(`${baseUrl}/`)}`);
  return lines;
}

export const awsCli: CloudCli = {
  formats: ['credential_process', 'env', 'json'],
  listing: ({ config, baseUrl }, profile) => [
    { label: 'ECS', url: credentialsUrl(baseUrl, config, profile) },
    // AWS_EC2_METADATA_SERVICE_ENDPOINT, without a trailing slash as in AWS's documentation.
    ...(profile === config.defaults.aws ? [{ label: 'IMDS', url: baseUrl }] : []),
  ],
  env: envLines,
  render,
  fromDaemon,
  async doctor(ctx, health) {
    const [clock, clients] = await Promise.all([clockCheck(ctx.config), clientChecks()]);
    return [
      clock,
      ...(await certificateChecks(ctx.config, health as HealthReport | undefined)),
      ...envCheck(ctx.env, ctx.baseUrl),
      ...clients,
    ];
  },
};
