/**
 * The node:http server, made and listening before fastify is loaded (held-requests.ts says why): its
 * limits, the slow-client guard, the answer to a request node cannot parse, and the credentials fast path
 * in front of whatever answers the rest (requests held for fastify, then fastify itself).
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Endpoint } from '../clouds/types.js';
import { serverError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ServerContext } from './context.js';
import { createFastPath } from './fast-path.js';
import { hostAllowlist, type Binding } from './guards.js';
import { someHandoutNeedsProcess } from './handout.js';
import { HeldRequests } from './held-requests.js';
import { guardSlowClients } from './slow-clients.js';

export const HTTP_OPTIONS = {
  maxHeaderSize: 16 * 1024,
  // headersTimeout is not derived from requestTimeout, and Node only enforces either when it checks
  // its connections (every 30 s by default): both are set so a slow client is cut off in ~10 s.
  headersTimeout: 10_000,
  requestTimeout: 10_000,
  // Node's check runs for the server's whole life, so it only backs up ours (slow-clients.ts), which
  // holds the 10 s to the second and runs only while connections are open: an idle daemon sleeps.
  connectionsCheckingInterval: 30_000,
  // A missing Host is left to the guard, so it gets the same JSON 403 as a wrong one.
  requireHostHeader: false,
  keepAliveTimeout: 5_000,
};

/** Requests that may wait during start-up before fastify is built without waiting for the first fetches. */
export const HELD_REQUEST_LIMIT = 256;
/**
 * Requests that may wait during start-up at all: sixteen times the limit, far above a cold start's burst
 * (the bench's is 1,000 clients). A waiting request holds about 2 KB of heap (measured: 4,096 pipelined
 * GETs over 64 connections), so about 8 MB at the cap.
 */
export const HELD_REQUEST_CAP = 16 * HELD_REQUEST_LIMIT;

/** Requests node's parser rejects still get the JSON error shape, then the connection closes. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const body = JSON.stringify(serverError('BadRequest', 'malformed HTTP request').body);
  socket.end(
    `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * What the fast path needs known of a held request's peer: its uid, and its process only where a handout
 * needs it (an audited daemon, a profile with allow_executables) and only for a uid that may have
 * credentials at all, as handOut asks; another user's connections cost no process lookup. Each is looked
 * up once per connection and kept.
 */
async function lookUpPeer(ctx: ServerContext, socket: Socket): Promise<void> {
  const id = await ctx.access.identifier.identify(socket);
  if (id.ok && ctx.access.policy().allows('credentials', id.uid) && someHandoutNeedsProcess(ctx))
    await ctx.access.identifier.process(socket);
}

export interface HttpFrontOptions {
  ctx: ServerContext;
  logger: Logger;
  /** The bound port and addresses, for the Host check; known only after listen. */
  binding: () => Binding;
  /** The endpoint modules of every configured cloud, made for this daemon. */
  endpoints: readonly Endpoint[];
}

export interface HttpFront {
  readonly server: Server;
  /** The Host header values the guard accepts, for fastify's guard hook too. */
  readonly allowed: () => Set<string>;
  readonly held: HeldRequests;
  /** From fastify's preClose on, the fast path leaves every request to fastify's 503. */
  markClosing(): void;
}

export function createHttpFront(o: HttpFrontOptions): HttpFront {
  const allowed = hostAllowlist(o.binding);
  let closing = false;
  const handlers = o.endpoints.flatMap((e) => (e.fast ? [e.fast.bind(e)] : []));
  const fastPath = createFastPath({ ctx: o.ctx, allowed, logger: o.logger, closing: () => closing, handlers });
  const held = new HeldRequests({ fastPath, lookup: (s) => lookUpPeer(o.ctx, s), limit: HELD_REQUEST_LIMIT, cap: HELD_REQUEST_CAP });
  const server = createServer(HTTP_OPTIONS, (req, res) => {
    held.handle(req, res);
    slow.onRequest(req, res);
  });
  const slow = guardSlowClients(server, { headersMs: HTTP_OPTIONS.headersTimeout, requestMs: HTTP_OPTIONS.requestTimeout });
  // Until fastify is built; it then takes this same handler over (app.ts).
  server.on('clientError', clientErrorHandler);
  return {
    server,
    allowed,
    held,
    markClosing: () => {
      closing = true;
    },
  };
}
