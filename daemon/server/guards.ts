/**
 * The checks every request passes before any route runs, in one hook:
 *  - the peer is a loopback address (the socket is bound to loopback, so this
 *    is a second lock on the same door);
 *  - the Host header is a loopback name with the bound port, which is what
 *    defeats DNS rebinding: a rebound page still sends its own host name;
 *  - no Origin, Sec-Fetch-Site, Sec-Fetch-Dest or Sec-Fetch-User header, which
 *    browsers send (every browser with Fetch Metadata sends Site and Dest on
 *    each request). A lone Sec-Fetch-Mode is let through: Node's own fetch
 *    (undici) sends `sec-fetch-mode: cors` and is a local program, not a page.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isLoopbackIp } from '../config/listen.js';

export function allowedHosts(port: number): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]'];
  const hosts = new Set(names.map((n) => `${n}:${port}`));
  if (port === 80) for (const n of names) hosts.add(n);
  return hosts;
}

const BROWSER_HEADERS = new Set(['origin', 'sec-fetch-site', 'sec-fetch-dest', 'sec-fetch-user']);

export type GuardFailure = { status: number; code: string; message: string };

export function checkRequest(req: FastifyRequest, allowed: Set<string>): GuardFailure | undefined {
  const peer = req.socket.remoteAddress ?? '';
  if (!isLoopbackIp(peer)) {
    return { status: 403, code: 'ForbiddenPeer', message: 'requests are accepted from loopback addresses only' };
  }
  const host = req.headers.host;
  if (typeof host !== 'string' || !allowed.has(host.toLowerCase())) {
    return { status: 403, code: 'ForbiddenHost', message: 'Host header must be a loopback address with the daemon\'s port' };
  }
  for (const name of Object.keys(req.headers)) {
    if (BROWSER_HEADERS.has(name)) {
      return { status: 403, code: 'ForbiddenBrowserRequest', message: 'requests from web browsers are refused' };
    }
  }
  return undefined;
}

export function registerGuards(app: FastifyInstance, port: () => number): void {
  let cachedPort = -1;
  let allowed = new Set<string>();
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const p = port();
    if (p !== cachedPort) {
      cachedPort = p;
      allowed = allowedHosts(p);
    }
    const failure = checkRequest(req, allowed);
    if (failure) {
      req.log.warn({ code: failure.code, peer: req.socket.remoteAddress, url: req.url.slice(0, 200) }, 'request refused');
      return reply.code(failure.status).header('connection', 'close').send({ Code: failure.code, Message: failure.message });
    }
    return undefined;
  });
}
