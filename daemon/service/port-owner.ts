/**
 * Who holds a TCP port, for the "port in use" error. Best effort: Linux reads
 * /proc (no tools needed); elsewhere lsof is asked. Any failure means "unknown".
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function linuxListeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      // state 0A = LISTEN
      if (!local || f[3] !== '0A') continue;
      if (parseInt(local.split(':')[1] ?? '', 16) === port && f[9]) inodes.add(f[9]);
    }
  }
  return inodes;
}

function linuxOwner(port: number): string | undefined {
  const inodes = linuxListeningInodes(port);
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process: not ours to read
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1] && inodes.has(m[1])) {
          const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(0, 3).join(' ');
          return `pid ${pid} (${cmd.slice(0, 80)})`;
        }
      } catch {
        // the fd closed while we looked
      }
    }
  }
  return "another user's process";
}

function lsofOwner(port: number): string | undefined {
  try {
    const out = execFileSync('lsof', ['-nP', `-iTCP:${port}`, '-sTCP:LISTEN', '-Fpc'], {
      encoding: 'utf8',
      timeout: 2000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const pid = /^p(\d+)$/m.exec(out)?.[1];
    const cmd = /^c(.+)$/m.exec(out)?.[1];
    return pid ? `pid ${pid}${cmd ? ` (${cmd})` : ''}` : undefined;
  } catch {
    return undefined;
  }
}

export function describePortOwner(port: number): string | undefined {
  try {
    return process.platform === 'linux' ? linuxOwner(port) : lsofOwner(port);
  } catch {
    return undefined;
  }
}
