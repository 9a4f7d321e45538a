/**
 * Requests that arrive before fastify is built. The daemon listens as soon as its profiles' first fetches
 * have started, and builds fastify only when they have settled: loading fastify holds the event loop for
 * longer than a fetch takes, so building it first would keep the first credentials waiting behind it.
 *
 * Until fastify is built, a request the fast path can answer is answered at once. Anything else waits here
 * and is offered to the fast path again when its connection's peer is identified and as each profile's
 * first fetch settles (`retryAll`); `open` hands what is still waiting, and every later request, to
 * fastify, which answers it the usual way (an error to report, /health, a refresh to wait for). A request
 * the fast path never answers (any method but GET: the IMDS token PUT), or a crowd past `limit`, asks for
 * fastify at once (`routerWanted`) rather than waiting for the fetches: a cold start's burst of clients is
 * never refused for being early. What waits is bounded in time (until fastify is built: the first fetches'
 * wait, FIRST_FETCH_WAIT_MS, or past `limit` only fastify's load) and in count (`cap`). Past the cap a
 * request is refused with a 503 and its connection closed (cut off, if it was pipelined behind others):
 * any local user can connect, and one pipelining GETs over a few connections would otherwise be held in
 * memory, thousands per network read, until then.
 * Once fastify is built, node's own backpressure applies: an answered request's reply must drain before
 * its connection is read further.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { serverError } from '../errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HeldRequestsOptions {
  /** Returns true when it answered the request. */
  fastPath: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Looks up what the fast path must know of the connection's peer (http-server.ts says what). */
  lookup: (socket: Socket) => Promise<unknown>;
  /** Past this many waiting requests, fastify is asked for at once. */
  limit: number;
  /** At this many waiting requests, another is refused (503 TooManyWaiting) and its connection closed. */
  cap: number;
}

const REFUSAL = JSON.stringify(serverError('TooManyWaiting', 'more requests wait for the daemon to start than it holds; retry').body);

function refuse(req: IncomingMessage, res: ServerResponse): void {
  // No socket yet: the request was pipelined behind others still unanswered, so a reply would wait in
  // node's queue with them. That connection is a flood, and is cut off, its waiting requests with it.
  if (!res.socket) {
    req.socket.destroy();
    return;
  }
  res.writeHead(503, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(REFUSAL),
    'retry-after': '1',
    connection: 'close',
  });
  res.end(REFUSAL);
}

interface Held {
  req: IncomingMessage;
  res: ServerResponse;
}

export class HeldRequests {
  readonly #o: HeldRequestsOptions;
  readonly #held = new Set<Held>();
  /** What waits, by connection: forgotten together when the connection closes. */
  readonly #bySocket = new WeakMap<Socket, Set<Held>>();
  #router: Handler | undefined;
  #closed = false;
  #wantRouter!: () => void;
  /** Resolves when a request is held that only fastify can answer, or when more than `limit` wait. */
  readonly routerWanted = new Promise<void>((resolve) => {
    this.#wantRouter = resolve;
  });

  constructor(o: HeldRequestsOptions) {
    this.#o = o;
  }

  /** Requests waiting for fastify (tests). */
  get size(): number {
    return this.#held.size;
  }

  /** The node server's request handler, before and after fastify is built. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.#closed) {
      req.socket.destroy();
      return;
    }
    if (this.#o.fastPath(req, res)) return;
    if (this.#router) {
      this.#router(req, res);
      return;
    }
    if (this.#held.size >= this.#o.cap) {
      refuse(req, res);
      return;
    }
    const h: Held = { req, res };
    this.#hold(h);
    if (req.method !== 'GET' || this.#held.size >= this.#o.limit) this.#wantRouter();
    void this.#o.lookup(req.socket).then(
      () => this.#retry(h),
      () => undefined,
    );
  }

  /**
   * A client that gives up is forgotten; fastify never sees its request. Watched on the connection, not on
   * each reply: a reply pipelined behind an unanswered one has no socket yet, and no 'close' of its own.
   */
  #hold(h: Held): void {
    this.#held.add(h);
    const socket = h.req.socket;
    let mine = this.#bySocket.get(socket);
    if (!mine) {
      const set = new Set<Held>();
      socket.once('close', () => {
        for (const x of set) this.#held.delete(x);
        set.clear();
      });
      this.#bySocket.set(socket, set);
      mine = set;
    }
    mine.add(h);
  }

  #forget(h: Held): void {
    this.#held.delete(h);
    this.#bySocket.get(h.req.socket)?.delete(h);
  }

  #retry(h: Held): void {
    if (this.#router || !this.#held.has(h)) return;
    if (this.#o.fastPath(h.req, h.res)) this.#forget(h);
  }

  /** Offers every waiting request to the fast path again (the first fetches have settled). */
  retryAll(): void {
    for (const h of [...this.#held]) this.#retry(h);
  }

  /** fastify is ready: it takes what is waiting, in arrival order, and every request the fast path leaves. */
  open(router: Handler): void {
    this.#router = router;
    const waiting = [...this.#held];
    for (const h of waiting) this.#forget(h);
    for (const h of waiting) if (!this.#o.fastPath(h.req, h.res)) router(h.req, h.res);
  }

  /** The start failed: what waits is cut off, and so is every request from now on. */
  close(): void {
    this.#closed = true;
    for (const h of [...this.#held]) {
      this.#forget(h);
      h.req.socket.destroy();
    }
  }
}
