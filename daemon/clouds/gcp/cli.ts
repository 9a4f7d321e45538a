/**
 * What the CLI says and does for Google Cloud: `credport env` writes the profile's external_account
 * file (0600) and prints the variables Google's libraries read; `credport auth` prints the access token
 * or the executable-sourced response; `credport profiles` lists the URLs.
 */
import { dirname, join } from 'node:path';
import { CliError, EXIT } from '../../cli/cli-error.js';
import { askDaemon, expectedDaemonUid } from '../../cli/daemon-client.js';
import { readTokenFile } from '../../server/token-file.js';
import type { Credentials } from '../../providers/types.js';
import type { CliContext, CloudCli } from '../types.js';
import type { GcpAccessToken } from './credentials.js';
import { accessTokenPath, type AccessTokenBody } from './endpoints/access-token-routes.js';
import { executableFailure, executableResponse } from './endpoints/executable-response.js';
import { externalAccountJson, writeExternalAccountFile } from './endpoints/external-account.js';
import { SUBJECT_TOKEN_SECRET_HEADER, subjectTokenPath, type SubjectTokenBody } from './endpoints/subject-token-routes.js';
import type { GcpWifProfileConfig } from './schema.js';
import { ensureSubjectTokenSecret, readSubjectTokenSecret } from './subject-token-secret.js';

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function profileOf(ctx: CliContext, name: string): GcpWifProfileConfig {
  return ctx.config.profiles.get(name) as GcpWifProfileConfig;
}

/** Where `credport env` writes a profile's external_account file: beside the daemon's token, private. */
export function externalAccountFile(ctx: CliContext, profile: string): string {
  return join(dirname(ctx.config.daemon.tokenFile), `gcp-${profile}.credentials.json`);
}

/** host:port of the metadata server, as GCE_METADATA_HOST wants it. */
const metadataHost = (baseUrl: string): string => baseUrl.replace(/^http:\/\//, '');

/** The metadata-server variables: Node reads GCE_METADATA_HOST; Python GCE_METADATA_IP (newer) or GCE_METADATA_ROOT (1.x). */
function metadataLines(ctx: CliContext, profile: string, p: GcpWifProfileConfig): string[] {
  if (!p.metadata_server)
    throw new CliError(
      `profile ${profile} is not served by the metadata server`,
      EXIT.usage,
      `set metadata_server = true in [profiles.${profile}] and run 'credport reload'`,
    );
  const host = metadataHost(ctx.baseUrl);
  // A credential file wins over the metadata server, and Python google-auth 1.x fails on one of this type.
  return [
    'unset GOOGLE_APPLICATION_CREDENTIALS',
    `export GCE_METADATA_HOST=${shq(host)}`,
    `export GCE_METADATA_IP=${shq(host)}`,
    `export GCE_METADATA_ROOT=${shq(host)}`,
  ];
}

function envLines(ctx: CliContext, profile: string, flags: Readonly<Record<string, unknown>>): string[] {
  const p = profileOf(ctx, profile);
  // Offline, Google's libraries cannot look the project up; with it set they never try.
  const project = p.project_id
    ? [`export GOOGLE_CLOUD_PROJECT=${shq(p.project_id)}`, `export CLOUDSDK_CORE_PROJECT=${shq(p.project_id)}`]
    : [];
  if (flags.metadata) return [...metadataLines(ctx, profile, p), ...project];
  let secret: string;
  try {
    secret = ensureSubjectTokenSecret(ctx.config.daemon.tokenFile);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.config);
  }
  const file = externalAccountFile(ctx, profile);
  writeExternalAccountFile(
    file,
    externalAccountJson({
      daemonUrl: ctx.baseUrl,
      profile,
      audience: p.audience,
      secret,
      ...(p.service_account ? { serviceAccount: p.service_account, lifetimeSeconds: p.lifetime_seconds } : {}),
      stsEndpoint: p.sts_endpoint,
      iamcredentialsEndpoint: p.iamcredentials_endpoint,
    }),
  );
  return [`export GOOGLE_APPLICATION_CREDENTIALS=${shq(file)}`, ...project];
}

function isAccessTokenBody(v: unknown): v is AccessTokenBody {
  const o = v as Partial<AccessTokenBody> | null;
  return (
    typeof o === 'object' && o !== null && typeof o.access_token === 'string' && typeof o.expires_at === 'string' && Array.isArray(o.scopes)
  );
}

async function fromDaemon(ctx: CliContext, profile: string, command: string): Promise<GcpAccessToken | undefined> {
  let token: string;
  try {
    token = readTokenFile(ctx.config.daemon.tokenFile);
  } catch {
    return undefined; // the daemon has never run here
  }
  const reply = await askDaemon(
    ctx.baseUrl,
    accessTokenPath(profile),
    { authorization: token, 'x-credport-command': command },
    3000,
    expectedDaemonUid(ctx.config),
  );
  if (!reply.reachable) return undefined;
  if (reply.status === 200 && isAccessTokenBody(reply.body)) {
    const b = reply.body;
    return {
      accessToken: b.access_token,
      expiration: new Date(b.expires_at),
      scopes: b.scopes,
      principal: profileOf(ctx, profile).service_account ?? '',
    };
  }
  const body = reply.body as { error?: string; error_description?: string };
  throw new CliError(
    `daemon: ${body.error ?? reply.status}: ${body.error_description ?? 'unexpected answer'}`,
    EXIT.failure,
    "see 'credport status'",
  );
}

function render(c: Credentials, format: string | undefined): string {
  const t = c as GcpAccessToken;
  if (format === 'token') return `${t.accessToken}\n`;
  return `${JSON.stringify({ access_token: t.accessToken, token_type: 'Bearer', expires_at: t.expiration.toISOString(), scopes: t.scopes }, null, 2)}\n`;
}

/** A subject token from the running daemon (it holds the key), or signed here when none runs. */
async function subjectToken(ctx: CliContext, profile: string, direct: boolean): Promise<{ token: string; expiration: Date }> {
  if (!direct) {
    let secret: string | undefined;
    try {
      secret = readSubjectTokenSecret(ctx.config.daemon.tokenFile);
    } catch {
      secret = undefined;
    }
    if (secret !== undefined) {
      const reply = await askDaemon(
        ctx.baseUrl,
        subjectTokenPath(profile),
        { [SUBJECT_TOKEN_SECRET_HEADER]: secret },
        3000,
        expectedDaemonUid(ctx.config),
      );
      const b = reply.reachable && reply.status === 200 ? (reply.body as Partial<SubjectTokenBody>) : undefined;
      if (b && typeof b.id_token === 'string' && typeof b.expiration_time === 'number')
        return { token: b.id_token, expiration: new Date(b.expiration_time * 1000) };
      if (reply.reachable) {
        const e = reply.body as { error?: string; error_description?: string };
        throw new CliError(`daemon: ${e.error ?? reply.status}: ${e.error_description ?? 'unexpected answer'}`, EXIT.failure);
      }
    }
  }
  const { openSigner } = await import('../../keys/open-signer.js');
  const { createDirectProvider } = await import('../../providers/create-providers.js');
  const signer = await openSigner(ctx.config.key);
  try {
    const made = await createDirectProvider(profile, ctx.config, signer, ctx.env);
    try {
      return await (made.provider as unknown as { subjectToken(): Promise<{ token: string; expiration: Date }> }).subjectToken();
    } finally {
      made.destroy();
    }
  } finally {
    await signer.close();
  }
}

export const gcpCli: CloudCli = {
  formats: ['json', 'token', 'executable'],
  specialFormats: ['executable'],
  listing(ctx, profile) {
    const p = profileOf(ctx, profile);
    return [
      { label: 'subject token', url: `${ctx.baseUrl}${subjectTokenPath(profile)}` },
      ...(p.metadata_server ? [{ label: 'metadata', url: `GCE_METADATA_HOST=${metadataHost(ctx.baseUrl)}` }] : []),
    ];
  },
  env: envLines,
  render,
  fromDaemon,
  async special(ctx, profile, format, direct) {
    if (format !== 'executable') return undefined;
    // Google's executable-sourced contract: one JSON object on stdout, success or not, and nothing on stderr.
    try {
      const t = await subjectToken(ctx, profile, direct);
      return { stdout: `${JSON.stringify(executableResponse(t.token, t.expiration))}\n`, ok: true };
    } catch (err) {
      const code = err instanceof CliError ? 'credport_error' : ((err as { code?: string }).code ?? 'credport_error');
      return { stdout: `${JSON.stringify(executableFailure(String(code), (err as Error).message))}\n`, ok: false };
    }
  },
};
