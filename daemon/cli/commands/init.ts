/** `credport init`: create the device key and a starter config. Never overwrites either. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'smol-toml';
import { ConfigError, loadConfig, resolveConfig } from '../../config/load.js';
import { configPath, xdgStateHome } from '../../config/paths.js';
import { FileKeySigner, KeyFileError } from '../../keys/file-signer.js';
import { defaultSubject } from '../../identity/jwt.js';
import { writeFileAtomic } from '../../util/secure-file.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';

const HELP = `Usage: credport init [options]

Creates the device key (P-256, mode 0600) and, when none exists, a config
file. Existing keys and configs are never overwritten.

Options:
  --issuer URL        OIDC issuer URL where you will publish the JWKS (https)
  --role-arn ARN      IAM role for the default profile
  --region REGION     STS region (default us-east-1)
  --listen HOST:PORT  loopback address for the daemon (default 127.0.0.1:80)
  -c, --config PATH   config file (default $XDG_CONFIG_HOME/credport/config.toml)
  -h, --help          show this help

Without --issuer and --role-arn the config gets placeholders to edit.
Next: credport oidc export DIR, publish DIR at the issuer URL, create the IAM
OIDC provider and role (docs/setup-aws.md), then credport serve.`;

export const initCommand: Command = {
  name: 'init',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('init', argv, {
      issuer: { type: 'string' },
      'role-arn': { type: 'string' },
      region: { type: 'string' },
      listen: { type: 'string' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const file = configPath(values.config, io.env);
    const stateDir = join(xdgStateHome(io.env), 'credport');
    let keyPath = join(stateDir, 'device-key.pem');
    let configCreated = false;

    if (!existsSync(file)) {
      const data = {
        daemon: { listen: values.listen ?? '127.0.0.1:80', token_file: join(stateDir, 'token') },
        key: { backend: 'file', path: keyPath },
        oidc: { issuer: values.issuer ?? 'https://issuer.example.com' },
        profiles: {
          default: { type: 'aws-oidc', role_arn: values['role-arn'] ?? 'arn:aws:iam::111122223333:role/credport', region: values.region ?? 'us-east-1', duration_seconds: 3600 },
        },
      };
      try {
        // Validate before writing so that a bad flag never leaves a broken file behind.
        resolveConfig(file, structuredClone(data), io.env);
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.problems.join('; ').replace(/^/, 'invalid value: '), EXIT.usage, "see 'credport init --help'");
        throw err;
      }
      const placeholders = !values.issuer || !values['role-arn'];
      const header =
        '# credport configuration — reference: docs/config-reference.md\n' +
        (placeholders ? '# Replace the placeholder issuer and role_arn before running `credport serve`.\n' : '') +
        '\n';
      writeFileAtomic(file, header + stringify(data) + '\n', 0o644);
      configCreated = true;
    } else {
      try {
        keyPath = loadConfig(file, io.env).key.path;
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message, EXIT.config);
        throw err;
      }
    }

    let signer: FileKeySigner;
    let keyCreated = false;
    try {
      if (existsSync(keyPath)) {
        signer = FileKeySigner.open(keyPath);
      } else {
        signer = FileKeySigner.create(keyPath);
        keyCreated = true;
      }
    } catch (err) {
      if (err instanceof KeyFileError || (err as Error).name === 'InsecureFileError') throw new CliError((err as Error).message, EXIT.config);
      throw err;
    }
    io.stdout(
      [
        `config:  ${file} (${configCreated ? 'created' : 'kept'})`,
        `key:     ${keyPath} (${keyCreated ? 'created' : 'kept'}, file backend)`,
        `kid:     ${signer.thumbprint}`,
        `subject: ${defaultSubject(signer)}`,
        '',
        'Next steps:',
        `  credport oidc export ${join(dirname(file), 'issuer')}   # discovery document + JWKS to publish at the issuer URL`,
        '  # create the IAM OIDC provider and role: docs/setup-aws.md',
        '  credport serve',
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  },
};
