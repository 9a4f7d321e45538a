/**
 * `credport auth`: credentials for one profile on stdout, for credential_process
 * or a shell. Asks the running daemon first (its cache, no extra STS call);
 * when none is running, fetches directly with the device key.
 */
import type { ResolvedConfig } from '../../config/load.js';
import { ProviderError, type AwsCredentials } from '../../providers/types.js';
import { readTokenFile } from '../../server/token.js';
import { awsTimestamp } from '../../clouds/aws/endpoints/wire.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { requireProfile } from '../profile-arg.js';
import { askDaemon, clientBaseUrl, expectedDaemonUid, loadCliConfig } from '../shared.js';

const HELP = `Usage: credport auth [options]

Prints credentials for a profile. In ~/.aws/config:

  [profile dev]
  credential_process = credport auth --profile dev

Options:
  --profile NAME     profile (default: the default profile)
  --format FORMAT    credential_process (default), env, json
  --direct           do not ask the daemon; fetch with the key directly
  -c, --config PATH  config file
  -h, --help         show this help

The output holds secrets: do not paste it anywhere.`;

const FORMATS = new Set(['credential_process', 'env', 'json']);
const FILE_ERRORS = new Set(['InsecureFileError', 'UnsafeFileError', 'SecretFileNotFoundError', 'X509KeyError', 'CertificateError', 'KeyBackendError']);

interface Wire {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  Expiration: string;
  AccountId?: string;
}

function isWire(v: unknown): v is Wire {
  const o = v as Partial<Wire> | null;
  return typeof o === 'object' && o !== null && [o.AccessKeyId, o.SecretAccessKey, o.Token, o.Expiration].every((x) => typeof x === 'string');
}

async function fromDaemon(cfg: ResolvedConfig, profile: string, command: string): Promise<AwsCredentials | undefined> {
  let token: string;
  try {
    token = readTokenFile(cfg.daemon.tokenFile);
  } catch {
    return undefined; // no token yet: the daemon has never run here
  }
  const reply = await askDaemon(clientBaseUrl(cfg.daemon.listen), `/v1/credentials/${encodeURIComponent(profile)}`, { authorization: token, 'x-credport-command': command }, 3000, expectedDaemonUid(cfg));
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

async function direct(cfg: ResolvedConfig, profile: string): Promise<AwsCredentials> {
  // Loaded here: the common path (a running daemon) needs neither the key nor the STS client.
  const { openSigner } = await import('../../keys/open-signer.js');
  const { createDirectProvider } = await import('../../providers/create-providers.js');
  let signer;
  try {
    signer = await openSigner(cfg.key);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.config);
  }
  let direct;
  try {
    direct = createDirectProvider(profile, cfg, signer, process.env);
    return await direct.provider.fetch();
  } catch (err) {
    if (err instanceof ProviderError) throw new CliError(`${err.code}: ${err.message}`, EXIT.failure);
    // A key, certificate or passphrase file that cannot be used is the configuration's problem (exit 3).
    if (err instanceof Error && FILE_ERRORS.has(err.name)) throw new CliError(err.message, EXIT.config);
    throw err;
  } finally {
    direct?.destroy();
    await signer.close();
  }
}

/**
 * Credentials for a profile, as `credport auth` prints them: from the running daemon's cache, or
 * (no daemon, or `direct`) fetched with the device key. `command` names the asker in the audit log.
 */
export async function fetchCredentials(cfg: ResolvedConfig, profile: string, opts: { direct?: boolean; command?: string } = {}): Promise<AwsCredentials> {
  return (!opts.direct ? await fromDaemon(cfg, profile, opts.command ?? 'auth') : undefined) ?? (await direct(cfg, profile));
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

function render(c: AwsCredentials, format: string): string {
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

export const authCommand: Command = {
  name: 'auth',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('auth', argv, { profile: { type: 'string', short: 'p' }, format: { type: 'string', short: 'f' }, direct: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const format = values.format ?? 'credential_process';
    if (!FORMATS.has(format)) throw new CliError(`--format: expected credential_process, env or json, got "${format}"`, EXIT.usage);
    const cfg = loadCliConfig(values.config, io);
    const profile = values.profile ?? cfg.defaultProfile;
    requireProfile(cfg, profile);
    const creds = await fetchCredentials(cfg, profile, { direct: values.direct ?? false });
    io.stdout(render(creds, format));
    return EXIT.ok;
  },
};
