/** Pieces several commands use: loading config with CLI-shaped errors, and reaching the daemon. */
import { ConfigError, ConfigNotFoundError, loadConfig, type ResolvedConfig } from '../config/load.js';
import type { KeySigner } from '../keys/signer.js';
import { parseListen, type ListenAddress } from '../config/listen.js';
import { configPath } from '../config/paths.js';
import { CliError, EXIT } from './cli-error.js';
import type { CliIo } from './io.js';

// In their own module so that the commands a running daemon answers (cli/fast/) reach it without the config loader.
export { askDaemon, clientBaseUrl, expectedDaemonUid, type DaemonReply } from './daemon-client.js';

export function loadCliConfig(flag: string | undefined, io: CliIo): ResolvedConfig {
  const file = configPath(flag, io.env);
  try {
    return loadConfig(file, io.env);
  } catch (err) {
    if (err instanceof ConfigNotFoundError) throw new CliError(err.message, EXIT.config);
    if (err instanceof ConfigError)
      throw new CliError(err.message, EXIT.config, 'fix the file; docs/config-reference.md lists every key, with an example');
    throw err;
  }
}

export function parseListenFlag(value: string | undefined): ListenAddress | undefined {
  if (value === undefined) return undefined;
  try {
    return parseListen(value);
  } catch (err) {
    throw new CliError(`--listen: ${(err as Error).message}`, EXIT.usage);
  }
}

/** The config and its device key, opened; a key that cannot be opened is a config-class error naming where it was sought. */
export async function openConfiguredSigner(configFlag: string | undefined, io: CliIo): Promise<{ cfg: ResolvedConfig; signer: KeySigner }> {
  const cfg = loadCliConfig(configFlag, io);
  // Loaded here: the commands that only ask the daemon (auth, env, status) never open the key.
  const { keyLocation, openSigner } = await import('../keys/open-signer.js');
  try {
    return { cfg, signer: await openSigner(cfg.key) };
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.config, `key: ${keyLocation(cfg.key)}`);
  }
}
