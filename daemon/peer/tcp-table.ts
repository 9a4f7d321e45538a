/**
 * The Linux fallback for finding a socket's owner: /proc/net/tcp and tcp6,
 * which list every TCP socket in the network namespace with its owner uid and
 * inode. Costs one read of the table (it grows with the number of sockets), so
 * the native netlink lookup is preferred where the addon is built.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';
import type { SocketOwner, SocketTuple } from './types.js';

const LITTLE = endianness() === 'LE';

/** An IPv4-mapped IPv6 address as an IPv4 one: the kernel lists such sockets in the table of their real family. */
export function unmapIPv4(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m?.[1] ?? addr;
}

/** The kernel prints each 32-bit word of an address in host byte order. */
function word(bytes: number[]): string {
  const ordered = LITTLE ? [...bytes].reverse() : bytes;
  return ordered
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

function ipv6Bytes(addr: string): number[] {
  const [head = '', tail] = addr.split('::', 2) as [string, string | undefined];
  const parse = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const groups = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  return groups.flatMap((g) => [(g >> 8) & 0xff, g & 0xff]);
}

/**
 * `127.0.0.1`, 8080 → `0100007F:1F90` (on a little-endian host), as the table writes it. With
 * `asMapped`, an IPv4 address is written as IPv4-mapped IPv6, as tcp6 lists a dual-stack socket's.
 */
export function tableAddress(addr: string, port: number, asMapped = false): string {
  const a = unmapIPv4(addr);
  let hex: string;
  if (isIPv4(a) && !asMapped) hex = word(a.split('.').map(Number));
  else if (isIPv4(a) || isIPv6(a)) {
    const b = isIPv4(a) ? [...new Array(10).fill(0), 0xff, 0xff, ...a.split('.').map(Number)] : ipv6Bytes(a.toLowerCase());
    hex = [0, 4, 8, 12].map((i) => word(b.slice(i, i + 4))).join('');
  } else throw new Error(`not an IP address: ${addr}`);
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Finds the socket bound to t.local and connected to t.remote in one table's text. */
export function findInTable(text: string, t: SocketTuple, asMapped = false): SocketOwner | undefined {
  const local = tableAddress(t.localAddress, t.localPort, asMapped);
  const remote = tableAddress(t.remoteAddress, t.remotePort, asMapped);
  const needle = ` ${local} ${remote} `;
  const at = text.indexOf(needle);
  if (at < 0) return undefined;
  const end = text.indexOf('\n', at);
  const f = text
    .slice(at, end < 0 ? undefined : end)
    .trim()
    .split(/\s+/);
  // local remote st tx:rx tr:when retrnsmt uid timeout inode
  const state = parseInt(f[2] ?? '', 16);
  const uid = Number(f[6]);
  const inode = Number(f[8]);
  if (!Number.isInteger(state) || !Number.isInteger(uid) || !Number.isInteger(inode)) return undefined;
  return { uid, inode, state };
}

export function tableLookup(t: SocketTuple): SocketOwner | undefined {
  if (!isIPv4(unmapIPv4(t.localAddress))) return findInTable(readFileSync('/proc/net/tcp6', 'latin1'), t);
  // An IPv4 peer is usually an IPv4 socket; one opened as IPv6 (dual stack) is listed in tcp6, mapped.
  return findInTable(readFileSync('/proc/net/tcp', 'latin1'), t) ?? findInTable(readFileSync('/proc/net/tcp6', 'latin1'), t, true);
}

/**
 * The fallback as the daemon uses it: each read of the tables walks the kernel's whole TCP hash
 * (10-20 ms of CPU even on a quiet machine), so reads are shared and rationed. Lookups wait for the
 * next read, which answers every lookup waiting for it; reads start at most once per
 * `minIntervalMs`, so a flood of new connections costs at most a bounded share of a core.
 */
export function rationedTableLookup(minIntervalMs = 100): (t: SocketTuple) => Promise<SocketOwner | undefined> {
  let waiting: { t: SocketTuple; resolve: (o: SocketOwner | undefined) => void; reject: (e: Error) => void }[] = [];
  let scheduled = false;
  let lastRead = -Infinity;
  const read = () => {
    scheduled = false;
    lastRead = Date.now();
    const batch = waiting;
    waiting = [];
    let tcp: string | undefined;
    let tcp6: string | undefined;
    for (const w of batch) {
      try {
        const v4 = isIPv4(unmapIPv4(w.t.localAddress));
        if (v4) tcp ??= readFileSync('/proc/net/tcp', 'latin1');
        const inV4 = v4 ? findInTable(tcp!, w.t) : undefined;
        if (inV4) {
          w.resolve(inV4);
          continue;
        }
        tcp6 ??= readFileSync('/proc/net/tcp6', 'latin1');
        w.resolve(findInTable(tcp6, w.t, v4));
      } catch (err) {
        w.reject(err as Error);
      }
    }
  };
  return (t) =>
    new Promise((resolve, reject) => {
      waiting.push({ t, resolve, reject });
      if (scheduled) return;
      scheduled = true;
      setTimeout(read, Math.max(0, lastRead + minIntervalMs - Date.now()));
    });
}
