/** The account a `--system` service runs as, and the state directory it owns (systemd's StateDirectory). */
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { runTool } from './manager.js';

export const SYSTEM_STATE_DIR = '/var/lib/credport';
export const SYSTEM_CONFIG = '/etc/credport/config.toml';
export const SYSTEM_ACCOUNT = 'credport';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

export class AccountError extends Error {
  override readonly name = 'AccountError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

async function lookup(name: string): Promise<Account | undefined> {
  const [u, g] = await Promise.all([runTool('id', ['-u', name]), runTool('id', ['-g', name])]);
  if (u.code !== 0 || g.code !== 0) return undefined;
  return { name, uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Looks the account up, creating it (root only) when missing; `notes` says what was done. */
export async function ensureAccount(name: string, home: string, notes: string[]): Promise<Account> {
  const found = await lookup(name);
  if (found) return found;
  const add = ['--system', '--home-dir', home, '--no-create-home', '--shell', '/usr/sbin/nologin', name];
  if (process.getuid?.() !== 0)
    throw new AccountError(`the account ${name} does not exist and only root can create it`, `sudo useradd ${add.join(' ')}`);
  const r = await runTool('useradd', add);
  if (r.code !== 0) throw new AccountError(`useradd ${name} failed: ${r.stderr.trim()}`);
  notes.push(`created system account ${name}`);
  const made = await lookup(name);
  if (!made) throw new AccountError(`useradd ${name} succeeded but id ${name} does not find it`);
  return made;
}

/** The state directory, 0700 and owned by the account, as systemd's StateDirectory= would make it. */
export function ensureStateDir(dir: string, account: Account): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  chownSync(dir, account.uid, account.gid);
}
