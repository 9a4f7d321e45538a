/**
 * /proc/net/tcp and tcp6 read independently of the code under test: the
 * reference the native peer lookup is checked against. Linux only.
 */
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { endianness } from 'node:os';

export interface ProcTcpEntry {
  uid: number;
  inode: number;
  state: number;
}

/**
 * The kernel prints each 32-bit word of an address as a host-order %08X, so
 * on a little-endian machine 127.0.0.1 reads 0100007F.
 */
function procAddress(address: string): string {
  const bytes = isIPv4(address) ? ipv4Bytes(address) : ipv6Bytes(address);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = bytes.subarray(i, i + 4);
    const ordered = endianness() === 'LE' ? Buffer.from(word).reverse() : word;
    out += Buffer.from(ordered).toString('hex').toUpperCase();
  }
  return out;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map((p) => Number(p)));
}

/** Enough of RFC 4291 for the loopback and wildcard forms the tests use. */
function ipv6Bytes(address: string): Buffer {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), ipv4Bytes(mapped[1]!)]);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const groups = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/**
 * The entry whose local end is local:localPort and remote end
 * remote:remotePort, from tcp (IPv4 addresses) or tcp6 (IPv6 ones).
 */
export function procTcpEntry(local: string, localPort: number, remote: string, remotePort: number): ProcTcpEntry | undefined {
  const file = isIPv4(local) ? '/proc/net/tcp' : '/proc/net/tcp6';
  const want = `${procAddress(local)}:${localPort.toString(16).toUpperCase().padStart(4, '0')}`;
  const wantRemote = `${procAddress(remote)}:${remotePort.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if (f.length < 10 || f[1] !== want || f[2] !== wantRemote) continue;
    return { state: parseInt(f[3]!, 16), uid: Number(f[7]), inode: Number(f[9]) };
  }
  return undefined;
}
