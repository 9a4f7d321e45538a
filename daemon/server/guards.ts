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
import type { Socket } from 'node:net';
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

export type GuardFailure = { status: number; body: ErrorBody };

/**
 * Whether a header name (as sent, any case) is `lower`. A name of another length costs one
 * comparison; only a same-length name in another case is lower-cased (allocating nothing otherwise).
 */
export function headerNameIs(name: string, lower: string): boolean {
  return name.length === lower.length && (name === lower || name.toLowerCase() === lower);
}

/** What a header was sent as: absent, once (its value), or more than once. */
export const SENT_TWICE: unique symbol = Symbol('sent more than once');

/**
 * The value of a header by its lower-case name, read from rawHeaders without building the
 * req.headers object (node builds it on first use, a visible share of a fast-path request).
 */
export function singleHeader(rawHeaders: readonly string[], lower: string): string | undefined | typeof SENT_TWICE {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!headerNameIs(rawHeaders[i]!, lower)) continue;
    if (value !== undefined) return SENT_TWICE;
    value = rawHeaders[i + 1]!;
  }
  return value;
}

/**
 * Whether the connection's peer is a loopback address, asked once per socket: the address of a
 * connected socket does not change.
 */
const loopbackPeer = new WeakMap<Socket, boolean>();

function peerIsLoopback(socket: Socket): boolean {
  let ok = loopbackPeer.get(socket);
  if (ok === undefined) {
    ok = isLoopbackIp(socket.remoteAddress ?? '');
    // A socket that has lost its peer address (closed under us) is judged again rather than remembered.
    if (socket.remoteAddress !== undefined) loopbackPeer.set(socket, ok);
  }
  return ok;
}

/**
 * Checks the raw request, so that the fast path (fast-path.ts) and the fastify hook run the same code.
 * The headers are read in one walk of rawHeaders, where every header appears as sent (duplicates too).
 */
export function checkRequest(req: IncomingMessage, allowed: Set<string>): GuardFailure | undefined {
  if (!peerIsLoopback(req.socket)) {
    return serverError('ForbiddenPeer', 'requests are accepted from loopback addresses only');
  }
  // An absolute-form target (GET http://evil/...) names its own host, which HTTP says wins over the
  // Host header; only origin-form targets are accepted, so the Host check below is the whole story.
  if (!req.url?.startsWith('/')) {
    return serverError('ForbiddenHost', 'only origin-form request targets (a path) are accepted');
  }
  const raw = req.rawHeaders;
  let host: string | undefined;
  let hosts = 0;
  let browser = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Switched on length: most names are none of these and cost one comparison.
    switch (name.length) {
      case 4:
        if (headerNameIs(name, 'host')) {
          hosts++;
          // Node keeps the first of several Host lines (req.headers.host); more than one is refused below.
          host ??= raw[i + 1];
        }
        break;
      case 6:
        if (headerNameIs(name, 'origin')) browser = true;
        break;
      case 14:
        if (headerNameIs(name, 'sec-fetch-site') || headerNameIs(name, 'sec-fetch-dest') || headerNameIs(name, 'sec-fetch-user'))
          browser = true;
        break;
    }
  }
  // RFC 9112 says a request with several Host lines is invalid.
  if (hosts > 1) return serverError('BadRequest', 'more than one Host header');
  if (host === undefined || !allowed.has(host.toLowerCase())) {
    return serverError('ForbiddenHost', "Host header must be a loopback address with the daemon's port");
  }
  if (browser) return serverError('ForbiddenBrowserRequest', 'requests from web browsers are refused');
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
