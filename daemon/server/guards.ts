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
import type { IncomingMessage } from 'node:http';
import { isLoopbackIp } from '../config/listen.js';
import { serverError, type ErrorBody } from '../errors.js';

/** Where the server is bound: known only after listen (port 0 picks one). */
export interface Binding {
  port: number;
  /** The bound IP addresses, e.g. 127.0.0.2 or ::1. */
  addresses: string[];
}

export function allowedHosts(b: Binding): Set<string> {
  const names = new Set(['127.0.0.1', 'localhost', '[::1]']);
  // A daemon bound to another loopback address (127.0.0.2) hands out URLs with it.
  for (const a of b.addresses) names.add(a.includes(':') ? `[${a.toLowerCase()}]` : a);
  const hosts = new Set([...names].map((n) => `${n}:${b.port}`));
  if (b.port === 80) for (const n of names) hosts.add(n);
  return hosts;
}

const BROWSER_HEADERS = new Set(['origin', 'sec-fetch-site', 'sec-fetch-dest', 'sec-fetch-user']);

export type GuardFailure = { status: number; body: ErrorBody };

/** Checks the raw request, so that the fast path (fast-path.ts) and the fastify hook run the same code. */
export function checkRequest(req: IncomingMessage, allowed: Set<string>): GuardFailure | undefined {
  const peer = req.socket.remoteAddress ?? '';
  if (!isLoopbackIp(peer)) {
    return serverError('ForbiddenPeer', 'requests are accepted from loopback addresses only');
  }
  // An absolute-form target (GET http://evil/...) names its own host, which HTTP says wins over the
  // Host header; only origin-form targets are accepted, so the Host check below is the whole story.
  if (!req.url?.startsWith('/')) {
    return serverError('ForbiddenHost', 'only origin-form request targets (a path) are accepted');
  }
  // Node keeps the first of several Host lines; RFC 9112 says such a request is invalid.
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]?.toLowerCase() === 'host') hosts++;
  if (hosts > 1) return serverError('BadRequest', 'more than one Host header');
  const host = req.headers.host;
  if (typeof host !== 'string' || !allowed.has(host.toLowerCase())) {
    return serverError('ForbiddenHost', "Host header must be a loopback address with the daemon's port");
  }
  for (const name of Object.keys(req.headers)) {
    if (BROWSER_HEADERS.has(name)) {
      return serverError('ForbiddenBrowserRequest', 'requests from web browsers are refused');
    }
  }
  return undefined;
}

/** The allowed Host values for the current binding, recomputed only when the binding changes. */
export function hostAllowlist(binding: () => Binding): () => Set<string> {
  let cached: Binding | undefined;
  let allowed = new Set<string>();
  return () => {
    const b = binding();
    if (b !== cached) {
      cached = b;
      allowed = allowedHosts(b);
    }
    return allowed;
  };
}

export function registerGuards(app: FastifyInstance, allowed: () => Set<string>): void {
  // A plain callback hook: an async one costs a promise per request on the hot path.
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const failure = checkRequest(req.raw, allowed());
    if (failure) {
      // The path only: a query string is the caller's and may carry anything.
      req.log.warn(
        { code: failure.body.Code, peer: req.socket.remoteAddress, path: (req.url.split('?', 1)[0] ?? '').slice(0, 200) },
        'request refused',
      );
      void reply.code(failure.status).header('connection', 'close').send(failure.body);
      return;
    }
    done();
  });
}
