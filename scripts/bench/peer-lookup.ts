/**
 * The cost of identifying the peer of one loopback connection, two ways in
 * the same run: the addon's native lookup (netlink sock_diag on Linux) and a
 * plain TypeScript read-and-parse of /proc/net/tcp and /proc/net/tcp6 (what a
 * fallback without the addon does), each with N connections open, since the
 * /proc files grow with every socket on the machine and netlink does not.
 *
 *   node dist/scripts/bench/peer-lookup.js [N ...]     (default: 10 1000)
 *
 * measurePeerLookup() returns the figures for the bench's main to report.
 * Linux only; each measurement is bounded in count and in time.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { endianness } from 'node:os';
import { pathToFileURL } from 'node:url';
import { nativeOwnerLookup, type SocketOwnerLookup } from '../../daemon/peer/native-owner.js';

export interface PeerLookupFigures {
  /** Client connections open (each also has its server end: 2N sockets). */
  connections: number;
  /** µs per native lookup (wall clock); undefined when the addon has no native lookup here. */
  nativeUs: number | undefined;
  /** CPU µs (user + system) per native lookup: steadier than wall time on a busy machine. */
  nativeCpuUs: number | undefined;
  nativeLookups: number;
  /** µs per read-and-parse of /proc/net/tcp + tcp6 that finds the same socket (wall clock). */
  procUs: number;
  procCpuUs: number;
  procLookups: number;
  /** Lines in /proc/net/tcp + tcp6 during the run. */
  procLines: number;
  /** Sampled lookups where the two disagreed on the inode (should be 0). */
  mismatches: number;
}

export interface PeerLookupOptions {
  /** Connection counts to measure at. Default [10, 1000]. */
  connections?: number[];
  /** Time spent per method and connection count, ms. Default 500. */
  budgetMs?: number;
  /** At most this many lookups per method and connection count. Default 200,000. */
  maxLookups?: number;
}

interface Conn {
  /** The server's end of the accepted connection: what the daemon looks up from. */
  accepted: net.Socket;
  client: net.Socket;
}

/** N clients connected to one listener on 127.0.0.1. */
async function openConnections(n: number): Promise<{ conns: Conn[]; close(): Promise<void> }> {
  const server = net.createServer();
  server.listen({ port: 0, host: '127.0.0.1', backlog: 2048 });
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const byPort = new Map<number, net.Socket>();
  server.on('connection', (s) => byPort.set(s.remotePort!, s));
  const conns: Conn[] = [];
  // In batches, so that the backlog never overflows.
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, () => net.connect(port, '127.0.0.1'));
    await Promise.all(batch.map((c) => once(c, 'connect')));
    for (const client of batch) conns.push({ accepted: undefined as unknown as net.Socket, client });
  }
  for (let tries = 0; byPort.size < n && tries < 500; tries++) await new Promise((r) => setTimeout(r, 10));
  for (const c of conns) {
    const accepted = byPort.get(c.client.localPort!);
    if (!accepted) throw new Error(`the server did not see the connection from port ${c.client.localPort}`);
    c.accepted = accepted;
  }
  return {
    conns,
    async close() {
      for (const c of conns) {
        c.client.destroy();
        c.accepted.destroy();
      }
      server.close();
      await once(server, 'close');
    },
  };
}

/** A /proc/net/tcp address:port as the kernel prints it (each 32-bit word host-order %08X). */
function procKey(address: string, port: number): string {
  const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(address);
  if (!m) throw new Error(`the benchmark uses IPv4 loopback only, not ${address}`);
  const bytes = m.slice(1, 5).map(Number);
  const ordered = endianness() === 'LE' ? bytes.reverse() : bytes;
  const hex = ordered
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The plain fallback: read tcp and tcp6, parse every line, find the socket whose ends match. */
function procLookup(local: string, remote: string): { uid: number; inode: number } | undefined {
  let found: { uid: number; inode: number } | undefined;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = readFileSync(file, 'latin1').split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i]!.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (found === undefined && f[1] === local && f[2] === remote) found = { uid: Number(f[7]), inode: Number(f[9]) };
    }
  }
  return found;
}

function procLineCount(): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) n += readFileSync(file, 'latin1').split('\n').length - 2;
  return n;
}

/** Calls fn(i) until the budget or the count runs out; wall and CPU µs per call, and the count. */
function timeLoop(budgetMs: number, maxCalls: number, fn: (i: number) => void): { us: number; cpuUs: number; calls: number } {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const budgetNs = BigInt(budgetMs) * 1_000_000n;
  let calls = 0;
  while (calls < maxCalls) {
    for (let k = 0; k < 16 && calls < maxCalls; k++) fn(calls++);
    if (process.hrtime.bigint() - start >= budgetNs) break;
  }
  const ns = Number(process.hrtime.bigint() - start);
  const used = process.cpuUsage(cpu);
  return { us: ns / 1000 / calls, cpuUs: (used.user + used.system) / calls, calls };
}

async function measureAt(
  n: number,
  lookup: SocketOwnerLookup | undefined,
  budgetMs: number,
  maxLookups: number,
): Promise<PeerLookupFigures> {
  const { conns, close } = await openConnections(n);
  try {
    const args = conns.map(({ accepted: s }) => ({
      family: (s.remoteFamily === 'IPv6' ? 6 : 4) as 4 | 6,
      la: s.remoteAddress!,
      lp: s.remotePort!,
      ra: s.localAddress!,
      rp: s.localPort!,
    }));
    const keys = args.map((a) => ({ local: procKey(a.la, a.lp), remote: procKey(a.ra, a.rp) }));

    let mismatches = 0;
    for (let i = 0; i < Math.min(20, n); i++) {
      const a = args[i]!;
      const viaProc = procLookup(keys[i]!.local, keys[i]!.remote);
      const viaNative = lookup?.(a.family, a.la, a.lp, a.ra, a.rp);
      if (!viaProc || (lookup && viaNative?.inode !== viaProc.inode)) mismatches++;
    }

    let native: { us: number; cpuUs: number; calls: number } | undefined;
    if (lookup) {
      native = timeLoop(budgetMs, maxLookups, (i) => {
        const a = args[i % n]!;
        if (!lookup(a.family, a.la, a.lp, a.ra, a.rp)) throw new Error('the native lookup lost a live connection');
      });
    }
    const proc = timeLoop(budgetMs, maxLookups, (i) => {
      const k = keys[i % n]!;
      if (!procLookup(k.local, k.remote)) throw new Error('/proc lost a live connection');
    });
    return {
      connections: n,
      nativeUs: native?.us,
      nativeCpuUs: native?.cpuUs,
      nativeLookups: native?.calls ?? 0,
      procUs: proc.us,
      procCpuUs: proc.cpuUs,
      procLookups: proc.calls,
      procLines: procLineCount(),
      mismatches,
    };
  } finally {
    await close();
  }
}

export async function measurePeerLookup(o: PeerLookupOptions = {}): Promise<PeerLookupFigures[]> {
  if (process.platform !== 'linux') throw new Error('the peer-lookup benchmark reads /proc/net/tcp: Linux only');
  const lookup = nativeOwnerLookup();
  const out: PeerLookupFigures[] = [];
  for (const n of o.connections ?? [10, 1000]) out.push(await measureAt(n, lookup, o.budgetMs ?? 500, o.maxLookups ?? 200_000));
  return out;
}

export function renderPeerLookup(figures: PeerLookupFigures[]): string {
  const us = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toFixed(1));
  const rows = figures.map((f) => {
    const ratio = f.nativeCpuUs === undefined ? '' : `${(f.procCpuUs / f.nativeCpuUs).toFixed(0)}x`;
    return (
      `| ${f.connections} | ${f.procLines} | ${us(f.nativeUs)} (${us(f.nativeCpuUs)} CPU) | ` +
      `${us(f.procUs)} (${us(f.procCpuUs)} CPU) | ${ratio} | ${f.nativeLookups} / ${f.procLookups} | ${f.mismatches} |`
    );
  });
  return [
    '| connections | /proc lines | native µs/lookup | /proc µs/lookup | /proc ÷ native (CPU) | lookups timed | mismatches |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  const counts = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n <= 5000);
  const figures = await measurePeerLookup(counts.length ? { connections: counts } : {});
  if (figures.some((f) => f.nativeUs === undefined))
    process.stdout.write('native lookup: not available here (addon not built, or ENOTSUP)\n');
  process.stdout.write(`${renderPeerLookup(figures)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`peer-lookup benchmark: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
