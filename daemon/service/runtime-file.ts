/**
 * What the running daemon actually is, for the CLI: pid, instance, the
 * addresses it really listens on, its config and token file, and the client
 * view of the config it loaded (service/client-view.ts, for the CLI's slim
 * path). The config's `listen` can change (a reload, or --listen) while the
 * daemon keeps its socket, so commands that talk to the daemon find it here,
 * not in the config. Lives beside the lock file, 0600, written atomically,
 * removed at exit; readOwnRuntimeFile believes only one that is this user's
 * and private, since the slim path acts on its view.
 */
import { unlinkSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parseJsonObject, readPrivateSmallFile, readSmallFile, writeFileAtomic } from '../util/secure-file.js';

export interface RuntimeInfo {
  pid: number;
  /** The lock's instance id: a runtime file is believed only next to the lock of the same instance. */
  instance: string;
  /** Base URL clients use, e.g. http://127.0.0.1:9911. */
  url: string;
  /** Every address actually bound, as HOST:PORT. */
  listen: string[];
  config: string;
  tokenFile: string;
  startedAt: string;
  /** What `auth`, `env` and `status` need from the config, for the CLI's slim path (cli/fast/). */
  client?: ClientView;
}

/**
 * The config as the daemon resolved it from the exact bytes whose digest is given, with the
 * environment variables given (those resolution read: HOME, XDG_*): a CLI that reads the same bytes
 * with those variables equal, and the same credport version, would resolve exactly this. Nothing secret: profile
 * tables hold names, ARNs, URLs and paths.
 */
export interface ClientView {
  version: string;
  configSha256: string;
  /** Each variable resolution read, null for one that was unset. */
  env: Record<string, string | null>;
  lockFile: string;
  /** The config's token file (the top-level tokenFile is the one the daemon serves with until a restart). */
  tokenFile: string;
  defaultProfile: string;
  defaults: Record<string, string>;
  /** Each profile's cloud (a CloudModule name) and its table as resolved (paths expanded). */
  profiles: Record<string, { cloud: string; config: Record<string, unknown> }>;
}

/** daemon.pid → daemon.runtime.json, in the lock file's directory. */
export function runtimeFilePath(lockFile: string): string {
  return join(dirname(lockFile), `${basename(lockFile, extname(lockFile))}.runtime.json`);
}

export function writeRuntimeFile(path: string, info: RuntimeInfo): void {
  writeFileAtomic(path, `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

const MAX_BYTES = 64 * 1024;

/** The runtime file's content, or undefined when it is absent or not one credport wrote. */
export function readRuntimeFile(path: string): RuntimeInfo | undefined {
  const text = readSmallFile(path, MAX_BYTES);
  return text === undefined ? undefined : parseRuntimeInfo(text);
}

const isStringRecord = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

function isClientView(v: unknown): v is ClientView {
  const c = v as Partial<ClientView> | null;
  if (typeof c !== 'object' || c === null) return false;
  if (![c.version, c.configSha256, c.lockFile, c.tokenFile, c.defaultProfile].every((x) => typeof x === 'string')) return false;
  if (!isStringRecord(c.defaults) || typeof c.env !== 'object' || c.env === null || Array.isArray(c.env)) return false;
  if (!Object.values(c.env).every((x) => x === null || typeof x === 'string')) return false;
  if (typeof c.profiles !== 'object' || c.profiles === null || Array.isArray(c.profiles)) return false;
  return Object.values(c.profiles).every(
    (p) => typeof p?.cloud === 'string' && typeof p.config === 'object' && p.config !== null && !Array.isArray(p.config),
  );
}

/**
 * The runtime file with its client view, read only when it is a regular file of this user's with no
 * group or other bits (as the daemon writes it): the slim path believes what it says about the config.
 */
export function readOwnRuntimeFile(path: string): (RuntimeInfo & { client: ClientView }) | undefined {
  const text = readPrivateSmallFile(path, MAX_BYTES);
  const r = text === undefined ? undefined : parseRuntimeInfo(text);
  return r && isClientView(r.client) ? (r as RuntimeInfo & { client: ClientView }) : undefined;
}

function parseRuntimeInfo(text: string): RuntimeInfo | undefined {
  const r = parseJsonObject(text);
  if (!r) return undefined;
  const strings = ['instance', 'url', 'config', 'tokenFile', 'startedAt'] as const;
  if (!Number.isInteger(r.pid) || strings.some((k) => typeof r[k] !== 'string')) return undefined;
  if (!Array.isArray(r.listen) || !r.listen.every((a) => typeof a === 'string')) return undefined;
  // Only loopback URLs: the CLI sends the bearer token there.
  if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(r.url as string)) return undefined;
  return r as unknown as RuntimeInfo;
}

export function removeRuntimeFile(path: string, instance: string): void {
  if (readRuntimeFile(path)?.instance !== instance) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
