/** Parsing and checking of `listen` addresses: loopback only, by construction. */
import { isIP } from 'node:net';

export interface ListenAddress {
  /** The host given to the socket: 127.x.x.x, ::1, or 'localhost' (fastify binds every loopback address for it). */
  host: string;
  port: number;
}

export class ListenAddressError extends Error {
  override readonly name = 'ListenAddressError';
}

export function isLoopbackIp(addr: string): boolean {
  if (isIP(addr) === 4) return addr.startsWith('127.');
  const a = addr.toLowerCase();
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  // IPv4-mapped IPv6, as a dual-stack socket reports IPv4 peers.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped !== null && mapped[1] !== undefined && mapped[1].startsWith('127.');
}

export function parseListen(value: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new ListenAddressError(`"${value}" is not HOST:PORT (write IPv6 as [::1]:PORT)`);
  const host = (m[1] ?? m[2] ?? '').toLowerCase();
  const port = Number(m[3]);
  if (port > 65535) throw new ListenAddressError(`port ${port} is out of range`);
  if (host === 'localhost') return { host, port };
  if (isIP(host) === 0)
    throw new ListenAddressError(`"${host}" is not an IP address or localhost; names other than localhost are not resolved`);
  if (!isLoopbackIp(host)) {
    throw new ListenAddressError(`"${host}" is not a loopback address; credport serves credentials on loopback only (127.0.0.1, ::1)`);
  }
  return { host, port };
}

export function formatListen(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
