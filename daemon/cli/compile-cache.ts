/**
 * Node's compile cache (22.1 and later) keeps the compiled code of every module between runs, and with
 * no directory given it keeps it under os.tmpdir(): /tmp/node-compile-cache, on a shared machine a
 * directory any local user may have made first. Code read from a cache is run as it is, so credport
 * keeps its cache where only its user can write: $XDG_CACHE_HOME (or ~/.cache)/credport/node-compile-cache,
 * checked to be a directory of this user that no one else may write to. Without such a place there is
 * no cache; it only saves time.
 */
import { lstatSync, mkdirSync, statSync } from 'node:fs';

/** Where this user's compile cache may live, created 0700 if missing; undefined when nowhere is safe. */
export function compileCacheDir(env: NodeJS.ProcessEnv, uid: number): string | undefined {
  // The XDG spec says a relative path in these variables is to be ignored.
  const xdg = env.XDG_CACHE_HOME?.startsWith('/') ? env.XDG_CACHE_HOME : undefined;
  const home = env.HOME?.startsWith('/') ? env.HOME : undefined;
  const base = xdg ?? (home && `${home}/.cache`);
  if (!base) return undefined;
  const dir = `${base}/credport/node-compile-cache`;
  try {
    // Only in a place of this user's own: under sudo, HOME may still name the invoking user's home,
    // where root's directories would later shut that user out of the cache.
    // A missing XDG_CACHE_HOME is made, as the XDG spec says; a missing home is no place to make one.
    const owner = statSync(xdg ?? (home as string), { throwIfNoEntry: false })?.uid;
    if (owner === undefined ? !xdg : owner !== uid) return undefined;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    const parent = lstatSync(`${base}/credport`);
    for (const s of [st, parent]) if (!s.isDirectory() || s.uid !== uid || (s.mode & 0o022) !== 0) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * Turns the cache on where the running node has it. Older node has no such call, and loading
 * node:module only to find that out would cost a millisecond (getBuiltinModule came in 22.3; 22.0 to
 * 22.2 start without the cache).
 */
export function enableCompileCache(env: NodeJS.ProcessEnv = process.env): void {
  if (Number(process.versions.node.split('.')[0]) < 22 || typeof process.getuid !== 'function') return;
  const mod = process.getBuiltinModule?.('node:module') as { enableCompileCache?: (dir: string) => unknown } | undefined;
  if (!mod?.enableCompileCache) return;
  const dir = compileCacheDir(env, process.getuid());
  if (dir) mod.enableCompileCache(dir);
}
