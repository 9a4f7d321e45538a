/**
 * A real second local account for isolation tests: created with useradd,
 * removed with userdel at teardown. Needs root (CI runs as root); elsewhere the
 * tests that need it are skipped, and fail under CI=true like any missing tool.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Tool } from './tools.js';

export interface LocalUser {
  name: string;
  uid: number;
  gid: number;
  remove(): void;
}

export const rootForUsers: Tool = {
  name: 'root (to create a second local user)',
  present: process.getuid?.() === 0 && spawnSync('useradd', ['--help'], { stdio: 'ignore' }).status === 0,
  why: 'creating a real second user needs root and useradd',
};

export function createUser(prefix = 'cpt'): LocalUser {
  const name = `${prefix}${randomBytes(4).toString('hex')}`;
  const r = spawnSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`useradd ${name} failed: ${r.stderr}`);
  const id = (flag: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  return {
    name,
    uid: id('-u'),
    gid: id('-g'),
    remove: () => void spawnSync('userdel', [name], { stdio: 'ignore' }),
  };
}

export interface AsUserResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program as the user (not through a shell), with a clean environment and a time bound. */
export function runAs(user: LocalUser, file: string, args: string[], timeoutMs = 20_000): Promise<AsUserResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      uid: user.uid,
      gid: user.gid,
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** curl as the user: the status line's code and the body. */
export async function curlAs(user: LocalUser, args: string[]): Promise<{ status: number; body: string }> {
  const r = await runAs(user, 'curl', ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...args]);
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
}
