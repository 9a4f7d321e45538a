/** `credport init`: create the device key and a starter config. Never overwrites either. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { stringify } from 'smol-toml';
import { ConfigError, loadConfig, resolveConfig } from '../../config/load.js';
import { parseListen } from '../../config/listen.js';
import { configPath, xdgStateHome } from '../../config/paths.js';
import type { ResolvedKey } from '../../config/load.js';
import { defaultSubject } from '../../identity/jwt.js';
import { createKey, keyExists, openRsaSigner, openSigner } from '../../keys/open-signer.js';
import type { KeySigner } from '../../keys/signer.js';
import { probeBind, UNPRIVILEGED_LISTEN } from '../../service/bind-probe.js';
import {
  AccountError,
  ensureAccount,
  ensureStateDir,
  SYSTEM_ACCOUNT,
  SYSTEM_CONFIG,
  SYSTEM_STATE_DIR,
  type Account,
} from '../../service/system-account.js';
import { writeFileAtomic } from '../../util/secure-file.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';

const HELP = `Usage: credport init [options]

Creates the device key and, when none exists, a config file. Existing keys
and configs are never overwritten.

Options:
  --issuer URL          OIDC issuer URL where you will publish the JWKS (https)
  --role-arn ARN        IAM role for the default profile
  --region REGION       STS region (default us-east-1)
  --listen HOST:PORT    loopback address for the daemon (default 127.0.0.1:80
                        when this user may bind it, else ${UNPRIVILEGED_LISTEN})
  --backend NAME        file (default), pkcs11 or secure-enclave
  --rsa-key             also create the [rsa_key] file (RSA-2048, 0600) for
                        clouds that accept only RS256 (Microsoft Entra ID);
                        a new config gets an [rsa_key] table, an existing one
                        must have one. On a PKCS#11 token create the key with
                        pkcs11-tool instead (docs/setup-azure.md)
  -c, --config PATH     config file (default $XDG_CONFIG_HOME/credport/config.toml)
  --system              Linux, as root: for 'credport service install --system':
                        config ${SYSTEM_CONFIG}, key, token and lock in
                        ${SYSTEM_STATE_DIR} owned by the service account
  --user NAME           with --system: the account (default ${SYSTEM_ACCOUNT}; created if missing)
  --state-dir DIR       with --system: instead of ${SYSTEM_STATE_DIR}
  -h, --help            show this help

Backend options (used only when the config is created):
  file:            --key-path PATH (default $XDG_STATE_HOME/credport/device-key.pem)
  pkcs11:          --module PATH  --token-label LABEL | --uri pkcs11:...
                   [--key-label LABEL] [--key-id HEX]  --pin-file PATH | --pin-env NAME
  secure-enclave:  [--key-path PATH] (default $XDG_STATE_HOME/credport/secure-enclave-key.json)
                   [--user-presence]

Without --issuer and --role-arn the config gets placeholders to edit.
Next: credport oidc export DIR, publish DIR at the issuer URL, create the IAM
OIDC provider and role (docs/setup-aws.md), then credport serve.`;

/** Port 80 where this user may bind it (root, macOS, a lowered port floor), else a fixed unprivileged port. */
async function defaultListen(system: boolean, notes: string[]): Promise<string> {
  if (system) return '127.0.0.1:80'; // the system unit gets CAP_NET_BIND_SERVICE
  const probe = await probeBind(parseListen('127.0.0.1:80'));
  // In use means allowed (another server holds it): only a refusal moves the default.
  if (probe.ok || probe.code !== 'EACCES') return '127.0.0.1:80';
  notes.push(`listen:  ${UNPRIVILEGED_LISTEN}, because this user may not bind port 80 (docs/setup-linux.md: how to use port 80)`);
  return UNPRIVILEGED_LISTEN;
}

/** Effective uid/gid of `account` until the returned function is called (root only; the real ids stay root). */
function actAs(account: Account): () => void {
  process.setegid?.(account.gid);
  process.seteuid?.(account.uid);
  return () => {
    process.seteuid?.(0);
    process.setegid?.(0);
  };
}

const KEY_FLAGS = [
  'key-path',
  'module',
  'token-label',
  'uri',
  'key-label',
  'key-id',
  'pin-file',
  'pin-env',
  'tag',
  'user-presence',
] as const;

function keyTable(backend: string, v: Record<string, string | boolean | undefined>, stateDir: string): Record<string, unknown> {
  const pick = (flag: string, key: string) => (v[flag] !== undefined ? { [key]: v[flag] } : {});
  if (backend === 'pkcs11') {
    return {
      backend,
      ...pick('module', 'module'),
      ...pick('token-label', 'token_label'),
      ...pick('uri', 'uri'),
      ...pick('key-label', 'key_label'),
      ...pick('key-id', 'key_id'),
      ...pick('pin-file', 'pin_file'),
      ...pick('pin-env', 'pin_env'),
    };
  }
  if (backend === 'secure-enclave') {
    return {
      backend,
      path: (v['key-path'] as string | undefined) ?? join(stateDir, 'secure-enclave-key.json'),
      ...(v['user-presence'] ? { user_presence: true } : {}),
    };
  }
  return { backend, path: (v['key-path'] as string | undefined) ?? join(stateDir, 'device-key.pem') };
}

export const initCommand: Command = {
  name: 'init',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('init', argv, {
      issuer: { type: 'string' },
      'role-arn': { type: 'string' },
      region: { type: 'string' },
      listen: { type: 'string' },
      backend: { type: 'string' },
      'key-path': { type: 'string' },
      module: { type: 'string' },
      'token-label': { type: 'string' },
      uri: { type: 'string' },
      'key-label': { type: 'string' },
      'key-id': { type: 'string' },
      'pin-file': { type: 'string' },
      'pin-env': { type: 'string' },
      tag: { type: 'string' },
      'user-presence': { type: 'boolean' },
      system: { type: 'boolean' },
      user: { type: 'string' },
      'state-dir': { type: 'string' },
      'rsa-key': { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (values.tag !== undefined) {
      throw new CliError(
        '--tag is gone: Secure Enclave keys are no longer kept in the keychain but named by a key file',
        EXIT.usage,
        'use --key-path PATH, or leave it out for the default (docs/key-backends.md)',
      );
    }
    const system = values.system ?? false;
    if (!system && (values.user !== undefined || values['state-dir'] !== undefined)) {
      throw new CliError(
        `--${values.user !== undefined ? 'user' : 'state-dir'} applies only with --system`,
        EXIT.usage,
        "see 'credport init --help'",
      );
    }
    const notes: string[] = [];
    let account: Account | undefined;
    if (system) {
      if (process.platform !== 'linux' && !io.env.CREDPORT_SERVICE_MANAGER)
        throw new CliError('--system is for systemd on Linux', EXIT.usage);
      if (process.getuid?.() !== 0)
        throw new CliError(
          'init --system writes a system config and a key for the service account: run it as root',
          EXIT.usage,
          'sudo credport init --system',
        );
    }
    const file = system ? resolvePath(values.config ?? SYSTEM_CONFIG) : configPath(values.config, io.env);
    const stateDir = system ? resolvePath(values['state-dir'] ?? SYSTEM_STATE_DIR) : join(xdgStateHome(io.env), 'credport');
    if (system) {
      try {
        account = await ensureAccount(values.user ?? SYSTEM_ACCOUNT, stateDir, notes);
      } catch (err) {
        if (err instanceof AccountError) throw new CliError(err.message, EXIT.failure, err.hint);
        throw err;
      }
    }
    let key: ResolvedKey;
    let rsaKey: ResolvedKey | undefined;
    let pendingConfig: string | undefined;

    if (existsSync(file)) {
      const given = [...KEY_FLAGS, 'backend', 'issuer', 'role-arn', 'region', 'listen', 'state-dir'].filter(
        (f) => (values as Record<string, unknown>)[f] !== undefined,
      );
      if (given.length > 0) {
        throw new CliError(
          `${file} already exists; --${given[0]} applies only when init creates the config`,
          EXIT.usage,
          `edit ${file} instead`,
        );
      }
      try {
        ({ key, rsaKey } = loadConfig(file, io.env));
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message, EXIT.config);
        throw err;
      }
    } else {
      // Under ProtectHome=yes the service sees no home directory: its key lives in the state directory.
      if (account) ensureStateDir(stateDir, account);
      const data = {
        daemon: {
          listen: values.listen ?? (await defaultListen(system, notes)),
          token_file: join(stateDir, 'token'),
          // A system service has no $XDG_STATE_HOME of its own: every file it writes is named.
          ...(system ? { lock_file: join(stateDir, 'daemon.pid'), audit_file: join(stateDir, 'audit.log') } : {}),
        },
        key: keyTable(values.backend ?? 'file', values, stateDir),
        ...(values['rsa-key'] ? { rsa_key: { backend: 'file', path: join(stateDir, 'device-rsa-key.pem') } } : {}),
        oidc: { issuer: values.issuer ?? 'https://issuer.example.com' },
        profiles: {
          default: {
            type: 'aws-oidc',
            role_arn: values['role-arn'] ?? 'arn:aws:iam::111122223333:role/credport',
            region: values.region ?? 'us-east-1',
            duration_seconds: 3600,
          },
        },
      };
      try {
        // Validate before touching anything, so a bad flag leaves nothing behind.
        ({ key, rsaKey } = resolveConfig(file, structuredClone(data), io.env));
      } catch (err) {
        if (err instanceof ConfigError)
          throw new CliError(`invalid value: ${err.problems.join('; ')}`, EXIT.usage, "see 'credport init --help'");
        throw err;
      }
      const placeholders = !values.issuer || !values['role-arn'];
      pendingConfig =
        '# credport configuration — reference: docs/config-reference.md\n' +
        (placeholders ? '# Replace the placeholder issuer and role_arn before running `credport serve`.\n' : '') +
        `\n${stringify(data)}\n`;
    }

    if (values['rsa-key'] && rsaKey === undefined)
      throw new CliError(
        `${file} has no [rsa_key] table`,
        EXIT.config,
        'add `[rsa_key]` with `backend = "file"` to it and run init --rsa-key again',
      );
    if (values['rsa-key'] && rsaKey?.backend !== 'file')
      throw new CliError(
        '--rsa-key creates key files only; the [rsa_key] table names a PKCS#11 token',
        EXIT.usage,
        'create the key on the token: pkcs11-tool --keypairgen --key-type rsa:2048 --label device-rsa (docs/setup-azure.md)',
      );
    let signer: KeySigner;
    let rsaSigner: KeySigner | undefined;
    let rsaCreated = false;
    let keyCreated = false;
    // A system key is made and opened as the account that will use it: the daemon refuses a key file
    // that is not its own, and root could not re-open one that is the account's on a second run.
    const restore = account ? actAs(account) : () => undefined;
    try {
      if (await keyExists(key)) {
        signer = await openSigner(key);
      } else {
        signer = await createKey(key);
        keyCreated = true;
      }
      if (values['rsa-key'] && rsaKey) {
        rsaCreated = !(await keyExists(rsaKey));
        rsaSigner = rsaCreated ? await createKey(rsaKey) : await openRsaSigner(rsaKey);
      }
    } catch (err) {
      throw new CliError((err as Error).message, EXIT.config);
    } finally {
      restore();
    }
    // The config is written only once the key exists, so a failed init leaves no config pointing at nothing.
    if (pendingConfig !== undefined) {
      writeFileAtomic(file, pendingConfig, 0o644);
    }
    const d = signer.describe();
    io.stdout(
      [
        `config:  ${file} (${pendingConfig !== undefined ? 'created' : 'kept'})`,
        `key:     ${d.location} (${keyCreated ? 'created' : 'kept'}, ${d.backend} backend${d.userPresence ? ', user presence' : ''}${account ? `, owned by ${account.name}` : ''})`,
        `kid:     ${signer.thumbprint}`,
        ...(rsaSigner
          ? [
              `rsa key: ${rsaSigner.describe().location} (${rsaCreated ? 'created' : 'kept'}, RSA ${rsaSigner.algorithm})`,
              `rsa kid: ${rsaSigner.thumbprint}`,
            ]
          : []),
        `subject: ${defaultSubject(signer)}`,
        ...notes,
        '',
        'Next steps:',
        `  credport oidc export ${system ? `--config ${file} ` : ''}${join(system ? stateDir : dirname(file), 'issuer')}   # discovery document + JWKS to publish at the issuer URL`,
        '  # create the IAM OIDC provider and role: docs/setup-aws.md',
        system
          ? `  credport service install --system --config ${file}${account && account.name !== SYSTEM_ACCOUNT ? ` --user ${account.name}` : ''}`
          : '  credport serve',
        '',
      ].join('\n'),
    );
    await signer.close();
    await rsaSigner?.close();
    return EXIT.ok;
  },
};
