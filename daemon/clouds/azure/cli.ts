/**
 * What the CLI says and does for Azure: `credport env` prints the managed identity variables (or the
 * workload identity ones), `credport auth` prints a token from the daemon's managed identity endpoint,
 * `credport profiles` lists the endpoint.
 */
import { CliError, EXIT } from '../../cli/cli-error.js';
import { askDaemon, expectedDaemonUid } from '../../cli/daemon-client.js';
import type { Credentials } from '../../providers/types.js';
import type { CliContext, CloudCli } from '../types.js';
import { type AzureCredentials, resourceOf } from './credentials.js';
import { API_VERSION, IDENTITY_HEADER, identityPath, type ManagedIdentityBody } from './endpoints/managed-identity-routes.js';
import { federatedTokenFile } from './federated-token-file.js';
import { ensureIdentityHeader, readIdentityHeader } from './identity-header-secret.js';
import type { AzureFederatedProfileConfig } from './schema.js';

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function profileOf(ctx: CliContext, name: string): AzureFederatedProfileConfig {
  return ctx.config.profiles.get(name) as AzureFederatedProfileConfig;
}

function workloadIdentityLines(ctx: CliContext, profile: string, p: AzureFederatedProfileConfig): string[] {
  if (!p.federated_token_file)
    throw new CliError(
      `profile ${profile} keeps no federated token file`,
      EXIT.usage,
      `set federated_token_file = true in [profiles.${profile}] and run 'credport reload'`,
    );
  return [
    `export AZURE_FEDERATED_TOKEN_FILE=${shq(federatedTokenFile(ctx.config.daemon.tokenFile, profile))}`,
    `export AZURE_CLIENT_ID=${shq(p.client_id)}`,
    `export AZURE_TENANT_ID=${shq(p.tenant_id)}`,
    `export AZURE_AUTHORITY_HOST=${shq(p.authority)}`,
    'export AZURE_TOKEN_CREDENTIALS=WorkloadIdentityCredential',
  ];
}

function envLines(ctx: CliContext, profile: string, flags: Readonly<Record<string, unknown>>): string[] {
  const p = profileOf(ctx, profile);
  if (flags['federated-token']) return workloadIdentityLines(ctx, profile, p);
  let secret: string;
  try {
    secret = ensureIdentityHeader(ctx.config.daemon.tokenFile);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.config);
  }
  return [
    // Other managed identity sources win over App Service in the SDKs' detection order.
    'unset MSI_ENDPOINT MSI_SECRET IDENTITY_SERVER_THUMBPRINT IMDS_ENDPOINT',
    `export IDENTITY_ENDPOINT=${shq(`${ctx.baseUrl}${identityPath(profile)}`)}`,
    `export IDENTITY_HEADER=${shq(secret)}`,
    // Without it DefaultAzureCredential may pick a developer login (az, azd) first.
    'export AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential',
  ];
}

function isBody(v: unknown): v is ManagedIdentityBody {
  const o = v as Partial<ManagedIdentityBody> | null;
  return typeof o === 'object' && o !== null && typeof o.access_token === 'string' && typeof o.expires_on === 'string';
}

/** The first scope's token, through the managed identity endpoint the SDKs use. */
async function fromDaemon(ctx: CliContext, profile: string, _command: string): Promise<AzureCredentials | undefined> {
  let secret: string;
  try {
    secret = readIdentityHeader(ctx.config.daemon.tokenFile);
  } catch {
    return undefined; // no daemon with Azure profiles has run here
  }
  const p = profileOf(ctx, profile);
  const scope = p.scopes[0] ?? '';
  const resource = resourceOf(scope);
  const path = `${identityPath(profile)}?api-version=${API_VERSION}&resource=${encodeURIComponent(resource)}`;
  const reply = await askDaemon(ctx.baseUrl, path, { [IDENTITY_HEADER]: secret }, 3000, expectedDaemonUid(ctx.config));
  if (!reply.reachable) return undefined;
  if (reply.status === 200 && isBody(reply.body)) {
    const expiration = new Date(Number(reply.body.expires_on) * 1000);
    return { expiration, clientId: p.client_id, tokens: [{ scope, resource, accessToken: reply.body.access_token, expiration }] };
  }
  const e = reply.body as { error?: string; error_description?: string };
  throw new CliError(
    `daemon: ${e.error ?? reply.status}: ${e.error_description ?? 'unexpected answer'}`,
    EXIT.failure,
    "see 'credport status'",
  );
}

function render(c: Credentials, format: string | undefined): string {
  const a = c as AzureCredentials;
  const first = a.tokens[0];
  if (format === 'token') return `${first?.accessToken ?? ''}\n`;
  const tokens = a.tokens.map((t) => ({
    access_token: t.accessToken,
    token_type: 'Bearer',
    resource: t.resource,
    expires_at: t.expiration.toISOString(),
  }));
  return `${JSON.stringify({ client_id: a.clientId, tokens }, null, 2)}\n`;
}

export const azureCli: CloudCli = {
  formats: ['json', 'token'],
  listing(ctx, profile) {
    const p = profileOf(ctx, profile);
    return [
      { label: 'managed identity', url: `${ctx.baseUrl}${identityPath(profile)}` },
      ...(p.federated_token_file ? [{ label: 'federated token file', url: federatedTokenFile(ctx.config.daemon.tokenFile, profile) }] : []),
    ];
  },
  env: envLines,
  render,
  fromDaemon,
};
