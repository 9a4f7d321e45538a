/**
 * What the running daemon actually is, for the CLI: pid, instance, the
 * addresses it really listens on, its config and token file. The config's
 * `listen` can change (a reload, or --listen) while the daemon keeps its
 * socket, so commands that talk to the daemon find it here, not in the
 * config. Lives beside the lock file, 0600, written atomically, removed at exit.
 */
import { unlinkSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parseJsonObject, readSmallFile, writeFileAtomic } from '../util/secure-file.js';

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
  const r = text === undefined ? undefined : parseJsonObject(text);
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
