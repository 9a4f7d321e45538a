/**
 * Binding every address the config promises. `localhost` means both
 * 127.0.0.1 and ::1: `credport env` hands out 127.0.0.1 while some clients
 * resolve localhost to ::1 first, and an address left unbound is one another
 * local user can bind and collect tokens on. fastify opens only one address
 * when it is given its own server, so the others are plain listeners that
 * hand each connection to the same HTTP server (same handlers, same limits,
 * same peer checks). If any address cannot be bound, nothing is served.
 */
import { createServer, type Server as NetServer } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { ListenAddress } from '../config/listen.js';

/** The IP addresses a listen setting stands for, in binding order. */
export function listenHosts(l: ListenAddress): string[] {
  return l.host === 'localhost' ? ['127.0.0.1', '::1'] : [l.host];
}

function listenOne(host: string, port: number, http: HttpServer): Promise<NetServer> {
  return new Promise((resolve, reject) => {
    const s = createServer({ pauseOnConnect: false }, (socket) => http.emit('connection', socket));
    s.once('error', reject);
    // ipv6Only: ::1 must not also take IPv4 connections meant for the first listener.
    s.listen({ host, port, exclusive: true, ipv6Only: host.includes(':') }, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** Binds the HTTP server itself to the first address. */
export function listenHttp(http: HttpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host, port }, () => {
      http.off('error', reject);
      resolve();
    });
  });
}

/** Stops accepting, closes idle keep-alive connections, and resolves when the last connection has ended. */
export function closeHttpServer(http: HttpServer): Promise<void> {
  if (!http.listening) return Promise.resolve();
  return new Promise((resolve) => {
    http.close(() => resolve());
    http.closeIdleConnections();
  });
}

export interface ExtraListeners {
  addresses: string[];
  close(): Promise<void>;
}

/** Binds the remaining hosts on the port the first one got; on any failure, closes what it opened and throws. */
export async function listenAlso(http: HttpServer, hosts: string[], port: number): Promise<ExtraListeners> {
  const opened: NetServer[] = [];
  const closeAll = () => Promise.all(opened.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
  try {
    for (const h of hosts) opened.push(await listenOne(h, port, http));
  } catch (err) {
    await closeAll();
    throw err;
  }
  return { addresses: [...hosts], close: closeAll };
}
