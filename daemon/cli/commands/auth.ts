/**
 * `credport auth`: credentials for one profile on stdout, for credential_process
 * or a shell. Asks the running daemon first (its cache, no extra STS call);
 * when none is running, fetches directly with the device key.
 */
import type { ResolvedConfig } from '../../config/load.js';
import type { Credentials } from '../../providers/types.js';
import { parseFlags } from '../args.js';
import { cliContext } from '../daemon-locator.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { cloudCliOf, requireProfile } from '../profile-arg.js';
import { loadCliConfig } from '../shared.js';

const HELP = `Usage: credport auth [options]

Prints credentials for a profile. In ~/.aws/config:

  [profile dev]
  credential_process = credport auth --profile dev

For a Google Cloud profile it prints the access token as JSON, or with
--format executable the subject token in the response format of Google's
executable-sourced credentials.

Options:
  --profile NAME     profile (default: the default profile)
  --format FORMAT    AWS: credential_process (default), env, json;
                     Google Cloud: json (default), token, executable
  --direct           do not ask the daemon; fetch with the key directly
  -c, --config PATH  config file
  -h, --help         show this help

The output holds secrets: do not paste it anywhere.`;

const FILE_ERRORS = new Set([
  'InsecureFileError',
  'UnsafeFileError',
  'SecretFileNotFoundError',
  'X509KeyError',
  'CertificateError',
  'KeyBackendError',
]);

async function direct(cfg: ResolvedConfig, profile: string): Promise<Credentials> {
  // Loaded here: the common path (a running daemon) needs neither the key nor the STS client.
  const { openSigner } = await import('../../keys/open-signer.js');
  const { createDirectProvider } = await import('../../providers/create-providers.js');
  const { ProviderError } = await import('../../providers/types.js');
  let signer;
  try {
    signer = await openSigner(cfg.key);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.config);
  }
  let direct;
  try {
    direct = await createDirectProvider(profile, cfg, signer, process.env);
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
export async function fetchCredentials(
  cfg: ResolvedConfig,
  profile: string,
  opts: { direct?: boolean; command?: string } = {},
): Promise<Credentials> {
  const { cli } = await cloudCliOf(cfg, profile);
  const ctx = cliContext(cfg, process.env);
  return (!opts.direct ? await cli.fromDaemon(ctx, profile, opts.command ?? 'auth') : undefined) ?? (await direct(cfg, profile));
}

export const authCommand: Command = {
  name: 'auth',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('auth', argv, {
      profile: { type: 'string', short: 'p' },
      format: { type: 'string', short: 'f' },
      direct: { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const cfg = loadCliConfig(values.config, io);
    const profile = values.profile ?? cfg.defaultProfile;
    requireProfile(cfg, profile);
    const { cloud, cli } = await cloudCliOf(cfg, profile);
    const format = values.format ?? cli.formats[0];
    if (format === undefined || !cli.formats.includes(format)) {
      throw new CliError(`--format: expected ${cli.formats.join(', ')} for a ${cloud.title} profile, got "${values.format}"`, EXIT.usage);
    }
    const ctx = cliContext(cfg, io.env);
    const special = await cli.special?.(ctx, profile, format, values.direct ?? false);
    if (special) {
      io.stdout(special.stdout);
      return special.ok ? EXIT.ok : EXIT.failure;
    }
    const creds = await fetchCredentials(cfg, profile, { direct: values.direct ?? false });
    io.stdout(cli.render(creds, format));
    return EXIT.ok;
  },
};
