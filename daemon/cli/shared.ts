/** Pieces several commands use: loading config with CLI-shaped errors, and reaching the daemon. */
import { ConfigError, ConfigNotFoundError, loadConfig, type ResolvedConfig } from '../config/load.js';
import { keyLocation, openSigner } from '../keys/open-signer.js';
import type { KeySigner } from '../keys/signer.js';
import { parseListen, type ListenAddress } from '../config/listen.js';
import { configPath } from '../config/paths.js';
import { CliError, EXIT } from './cli-error.js';
import type { CliIo } from './io.js';

export function loadCliConfig(flag: string | undefined, io: CliIo): ResolvedConfig {
  const file = configPath(flag, io.env);
  try {
    return loadConfig(file, io.env);
  } catch (err) {
    if (err instanceof ConfigNotFoundError) throw new CliError(err.message, EXIT.config);
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.config, `fix the file; 'credport init --help' shows a working example`);
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

/** The base URL a client on this machine uses to reach a daemon listening on `l`. */
export function clientBaseUrl(l: ListenAddress): string {
  const host = l.host === 'localhost' ? '127.0.0.1' : l.host.includes(':') ? `[${l.host}]` : l.host;
  return l.port === 80 ? `http://${host}` : `http://${host}:${l.port}`;
}

export type DaemonReply = { reachable: false; reason: string } | { reachable: true; status: number; body: unknown };

/** One GET against the daemon with a short timeout; a refused connection means "not running". */
export async function askDaemon(base: string, path: string, headers: Record<string, string> = {}, timeoutMs = 3000): Promise<DaemonReply> {
  try {
    const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { reachable: true, status: res.status, body };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return { reachable: false, reason: cause?.code ?? (err as Error).name ?? 'error' };
  }
}

/** The config and its device key, opened; a key that cannot be opened is a config-class error naming where it was sought. */
export async function openConfiguredSigner(configFlag: string | undefined, io: CliIo): Promise<{ cfg: ResolvedConfig; signer: KeySigner }> {
  const cfg = loadCliConfig(configFlag, io);
  try {
    return { cfg, signer: await openSigner(cfg.key) };
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.config, `key: ${keyLocation(cfg.key)}`);
  }
}
