/**
 * The slim path's whole trust decision: a running daemon that loaded exactly the bytes the config
 * file holds now, so that what it published about the config (its runtime file's client view) is
 * what parsing and validating the file here would give. Any doubt answers undefined, and the
 * command takes its full path, which parses the config as always.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ResolvedConfig } from '../../config/load.js';
import { configPermissionProblems } from '../../config/file-permissions.js';
import { configPath, expandPath, type Env } from '../../config/paths.js';
import { lockOwner } from '../../service/instance-lock.js';
import { readOwnRuntimeFile, runtimeFilePath, type ClientView } from '../../service/runtime-file.js';
import { sha256Hex } from '../../util/sha256.js';
import { VERSION } from '../../version.js';

export interface SlimDaemon {
  /** Where the daemon answers (its runtime file, as locateDaemon finds it). */
  base: string;
  view: ClientView;
  /**
   * The parts of the resolved config that the cloud CLI halves read for auth, env and status: the
   * file, token and lock files, the profiles and the defaults. No key: nothing here fetches directly.
   */
  config: ResolvedConfig;
}

/** Schema default of [daemon] lock_file (config/schema.ts; a test keeps the two equal). */
export const DEFAULT_LOCK_FILE = '$XDG_STATE_HOME/credport/daemon.pid';

/**
 * Lock files the config may mean, without parsing it: a single `lock_file = "..."` line (a wrong
 * guess is harmless, as the runtime file found must then name this config, these bytes and that
 * very lock), and the default.
 */
function lockFileGuesses(text: string, env: Env, baseDir: string): string[] {
  const lines = [...text.matchAll(/^[ \t]*lock_file[ \t]*=[ \t]*(?:"([^"\\\n]*)"|'([^'\n]*)')[ \t]*(?:#.*)?$/gm)];
  const named = lines.length === 1 ? (lines[0]![1] ?? lines[0]![2]) : undefined;
  const guesses = named ? [expandPath(named, env, baseDir)] : [];
  const fallback = expandPath(DEFAULT_LOCK_FILE, env, baseDir);
  return guesses.includes(fallback) ? guesses : [...guesses, fallback];
}

/** Whether this environment holds every variable the daemon's resolution read, with the same value. */
const sameEnv = (read: Record<string, string | null>, env: Env): boolean =>
  Object.entries(read).every(([k, v]) => (typeof env[k] === 'string' ? env[k] : null) === v);

export function findSlimDaemon(configFlag: string | undefined, env: Env): SlimDaemon | undefined {
  const file = configPath(configFlag, env);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  // An unsafe config is refused by the full path, with its message.
  if (configPermissionProblems(file).length > 0) return undefined;
  // The same digest as config/load.ts takes with node:crypto, which this path does without (util/sha256.ts).
  const sha256 = sha256Hex(bytes);
  for (const lockFile of lockFileGuesses(bytes.toString('utf8'), env, dirname(file))) {
    const runtimeFile = runtimeFilePath(lockFile);
    const info = readOwnRuntimeFile(runtimeFile);
    const view = info?.client;
    if (!info || !view) continue;
    if (info.config !== file || view.configSha256 !== sha256 || view.version !== VERSION || !sameEnv(view.env, env)) continue;
    if (view.lockFile !== lockFile) continue;
    // The lock, not the runtime file, says who runs: a file left by a crashed daemon names a dead pid
    // (or a reused one, told apart by start time), and one of an earlier daemon another instance.
    const owner = lockOwner(lockFile);
    if (owner.state !== 'running' || owner.record.instance !== info.instance || owner.record.pid !== info.pid) continue;
    const config = {
      file,
      daemon: { tokenFile: view.tokenFile, lockFile: view.lockFile },
      profiles: new Map(Object.entries(view.profiles).map(([name, p]) => [name, p.config])),
      defaults: view.defaults,
      defaultProfile: view.defaultProfile,
    } as unknown as ResolvedConfig;
    return { base: info.url, view, config };
  }
  return undefined;
}
