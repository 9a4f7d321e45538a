/**
 * What identifying each connection's peer costs: new connections per second
 * (each one a credentials GET with `Connection: close`, from wrk in its own
 * process) against in-process daemons that differ only in how they ask who
 * the peer is: not at all (a constant answer, the baseline), the native
 * netlink lookup, the rationed /proc/net/tcp fallback, and the native lookup
 * plus the audit log's process scan. Rounds alternate so that drift hits
 * every variant alike. CPU per connection is the daemon process's own.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../daemon/config/load.js';
import { startDaemon, type RunningDaemon } from '../../daemon/daemon.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import { createLogger } from '../../daemon/logging/logger.js';
import { nativeOwnerLookup } from '../../daemon/peer/native-owner.js';
import type { OwnerQuery } from '../../daemon/peer/socket-owner.js';
import { rationedTableLookup } from '../../daemon/peer/tcp-table.js';
import { createBenchEnv, writePrivate } from './setup.js';

export interface PeerConnectionsRow {
  variant: string;
  connectionsPerSecond: number;
  cpuUsPerConnection: number;
  rounds: number[];
}

export interface PeerConnectionsResult {
  rows: PeerConnectionsRow[];
  seconds: number;
  connections: number;
  skipped?: string;
}

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** wrk runs in its own process; the daemon's CPU is this process's, measured around the run. */
function wrkNewConnections(
  wrk: string,
  script: string,
  url: string,
  connections: number,
  seconds: number,
): Promise<{ rps: number; cpuUs: number; requests: number }> {
  return new Promise((resolve, reject) => {
    const before = process.cpuUsage();
    const child = spawn(wrk, ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code: number | null) => {
      const used = process.cpuUsage(before);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
      const bad = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
      if (code !== 0 || !rps || !requests) return reject(new Error(`wrk failed: ${out.slice(-300)}`));
      if (bad) return reject(new Error(`${bad} requests were refused; the comparison would be meaningless`));
      resolve({ rps, cpuUs: used.user + used.system, requests });
    });
  });
}

export async function runPeerConnections(o: {
  seconds: number;
  rounds: number;
  connections: number;
  log: (l: string) => void;
}): Promise<PeerConnectionsResult> {
  const wrk = which('wrk');
  if (!wrk) return { rows: [], seconds: o.seconds, connections: o.connections, skipped: 'wrk is not installed (apt-get install wrk)' };
  const env = await createBenchEnv();
  const daemons: { name: string; d: RunningDaemon; token: string }[] = [];
  try {
    const config = loadConfig(env.configFile, process.env);
    const me = process.getuid?.() ?? 0;
    const constant: OwnerQuery = () => ({ uid: me, inode: 1, state: 1 });
    const native = nativeOwnerLookup();
    const variants: { name: string; lookup: OwnerQuery; audit: boolean }[] = [
      { name: 'no peer lookup (baseline)', lookup: constant, audit: false },
      ...(native
        ? [
            {
              name: 'native lookup (netlink)',
              lookup: ((t) => native(t.family, t.localAddress, t.localPort, t.remoteAddress, t.remotePort)) as OwnerQuery,
              audit: false,
            },
          ]
        : []),
      { name: '/proc/net/tcp lookup (fallback)', lookup: rationedTableLookup(), audit: false },
      ...(native
        ? [
            {
              name: 'native lookup + process scan (audit on)',
              lookup: ((t) => native(t.family, t.localAddress, t.localPort, t.remoteAddress, t.remotePort)) as OwnerQuery,
              audit: true,
            },
          ]
        : []),
    ];
    for (const [i, v] of variants.entries()) {
      // Each its own token file: every start writes a new token.
      const tokenFile = join(env.dir, `token-${i}`);
      const d = await startDaemon({
        config: { ...config, daemon: { ...config.daemon, tokenFile } },
        signer: FileKeySigner.open(config.key.backend === 'file' ? config.key.path : ''),
        logger: createLogger({ level: 'warn', destination: { write: () => undefined } }),
        listen: { host: '127.0.0.1', port: 0 },
        peerLookup: v.lookup,
        ...(v.audit ? { audit: { enabled: true, record: () => undefined } } : {}),
      });
      daemons.push({ name: v.name, d, token: readFileSync(tokenFile, 'utf8') });
    }
    const script = join(env.dir, 'wrk-close.lua');
    const rows = new Map<string, { rps: number[]; cpu: number[] }>(daemons.map((x) => [x.name, { rps: [], cpu: [] }]));
    for (let round = 0; round < o.rounds; round++) {
      for (const { name, d, token } of round % 2 === 0 ? daemons : [...daemons].reverse()) {
        // Headers through a Lua script, not argv: the token stays out of the process list.
        writePrivate(script, `wrk.headers["Connection"] = "close"\nwrk.headers["Authorization"] = ${JSON.stringify(token)}\n`);
        const r = await wrkNewConnections(wrk, script, `${d.url}/v1/credentials`, o.connections, o.seconds);
        rows.get(name)!.rps.push(r.rps);
        rows.get(name)!.cpu.push(r.cpuUs / r.requests);
      }
    }
    const result = [...rows].map(([variant, v]) => ({
      variant,
      connectionsPerSecond: median(v.rps),
      cpuUsPerConnection: median(v.cpu),
      rounds: v.rps,
    }));
    for (const r of result)
      o.log(
        `  ${r.variant.padEnd(42)} ${Math.round(r.connectionsPerSecond).toString().padStart(6)} conn/s  ${r.cpuUsPerConnection.toFixed(0).padStart(5)} µs CPU/conn`,
      );
    return { rows: result, seconds: o.seconds, connections: o.connections };
  } finally {
    for (const { d } of daemons) await d.close();
    await env.close();
  }
}
