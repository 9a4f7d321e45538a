/**
 * The requests SDKs make over and over, answered before fastify sees them: a credentials GET that
 * passes every check and finds credentials ready to serve. The shared checks (the guard, the peer) run
 * here; each endpoint module's own fast handler (clouds/NAME/endpoints) then runs the same token checks
 * and cached bodies as its routes. Anything else at all (an error to report, a refresh to wait for, a
 * peer not yet identified or not allowed, a process still being looked up, debug logging on, the
 * server closing) falls through to fastify, which answers it the usual way. fastify's own
 * per-request work (request/reply objects, hooks, routing) is about half of the cost of such a
 * request; this keeps credport close to a bare node server on its hot path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logging/logger.js';
import type { ServerContext } from './context.js';
import { checkRequest } from './guards.js';
import { allowedNow } from './peer-gate.js';

export interface FastPathOptions {
  ctx: ServerContext;
  allowed: () => Set<string>;
  logger: Logger;
  closing: () => boolean;
  /** The endpoints' fast handlers, tried in order. */
  handlers: ReadonlyArray<(req: IncomingMessage, res: ServerResponse, url: string) => boolean>;
}

/**
 * A 200 answer made once per credentials (the body's bytes and a flat header array) and written
 * as it stands by every request that serves those credentials.
 */
export interface CachedResponse {
  readonly headers: readonly string[];
  readonly body: Buffer;
}

export function cachedResponse(contentType: string, body: string, extra?: Record<string, string>): CachedResponse {
  const bytes = Buffer.from(body, 'utf8');
  // A flat [name, value, ...] array: node writes it as it stands, without walking an object's keys.
  const headers = ['content-type', contentType, 'content-length', String(bytes.length), 'cache-control', 'no-store'];
  if (extra) for (const k in extra) headers.push(k, extra[k]!);
  return { headers, body: bytes };
}

/**
 * Cached responses per credentials object: rebuilt when a refresh (or a reload) brings new
 * credentials, and dropped with the old ones (weak keys).
 */
export function responseCache<K extends object>(make: (key: K) => CachedResponse): (key: K) => CachedResponse {
  const cache = new WeakMap<K, CachedResponse>();
  return (key) => {
    let r = cache.get(key);
    if (r === undefined) {
      r = make(key);
      cache.set(key, r);
    }
    return r;
  };
}

export function sendCached(res: ServerResponse, r: CachedResponse): void {
  res.writeHead(200, r.headers as string[]);
  res.end(r.body);
}

/**
 * The path as the router sees it (routerOptions.ignoreDuplicateSlashes): "//latest/..." from the JS SDK
 * v2 is "/latest/...". Only the path before any query is touched; the common path costs one scan.
 */
export function collapseSlashes(url: string): string {
  if (!url.includes('//')) return url;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path.replace(/\/{2,}/g, '/') + (q === -1 ? '' : url.slice(q));
}

/** Returns true when it answered the request; false hands it to fastify untouched. */
export function createFastPath(o: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { ctx, handlers } = o;
  if (handlers.length === 0) return () => false;
  return (req, res) => {
    if (req.method !== 'GET' || o.closing() || o.logger.isLevelEnabled('debug')) return false;
    const url = collapseSlashes(req.url ?? '');
    if (checkRequest(req, o.allowed()) !== undefined) return false;
    if (!allowedNow(ctx.access, req.socket, 'credentials')) return false;
    for (const handle of handlers) if (handle(req, res, url)) return true;
    return false;
  };
}
