/**
 * User names in the config (allow_uids, monitor_uids) become uids when the
 * config is loaded: /etc/passwd first (no process spawned), then `id -u` for
 * users from a directory service (NSS). A name that resolves nowhere is a
 * config error, never silently dropped.
 */
import { readFileSync } from 'node:fs';

function fromPasswd(name: string, passwd: string): number | undefined {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return undefined;
}

export function resolveUid(entry: number | string, passwdFile = '/etc/passwd'): number | undefined {
  if (typeof entry === 'number') return entry;
  let passwd = '';
  try {
    passwd = readFileSync(passwdFile, 'utf8');
  } catch {
    // no passwd file (macOS keeps users in Directory Services): ask id
  }
  const found = fromPasswd(entry, passwd);
  if (found !== undefined) return found;
  try {
    // Loaded here, not at the top: every start loads the config, and child_process costs milliseconds to
    // load while only a name /etc/passwd lacks needs it.
    const { execFileSync } = process.getBuiltinModule('node:child_process');
    const out = execFileSync('id', ['-u', '--', entry], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return /^\d+$/.test(out) ? Number(out) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves a list; the names that could not be resolved are reported in `problems` under `key`. */
export function resolveUids(list: readonly (number | string)[], key: string, problems: string[]): number[] {
  const uids: number[] = [];
  for (const e of list) {
    const uid = resolveUid(e);
    if (uid === undefined) problems.push(`${key}: no user named "${e}" on this machine`);
    else uids.push(uid);
  }
  return uids;
}
