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
 * fastify at once (`routerWanted`) rather than waiting for the fetches: nothing is ever refused for being
 * early. What waits is bounded in time, not in count: until fastify is built (the first fetches' wait,
 * FIRST_FETCH_WAIT_MS, or past `limit` only fastify's load), then as fastify's own requests wait for a
 * refresh. Nothing caps the count, here or there: a local client pipelining thousands of GETs in that
 * window is held in memory until then.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HeldRequestsOptions {
  /** Returns true when it answered the request. */
  fastPath: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Looks up what the fast path must know of the connection's peer (http-server.ts says what). */
  lookup: (socket: Socket) => Promise<unknown>;
  /** Past this many waiting requests, fastify is asked for at once. */
  limit: number;
}

interface Held {
  req: IncomingMessage;
  res: ServerResponse;
}

export class HeldRequests {
  readonly #o: HeldRequestsOptions;
  readonly #held = new Set<Held>();
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
    const h: Held = { req, res };
    this.#held.add(h);
    // A client that gives up is forgotten; fastify never sees its request.
    res.once('close', () => this.#held.delete(h));
    if (req.method !== 'GET' || this.#held.size >= this.#o.limit) this.#wantRouter();
    void this.#o.lookup(req.socket).then(
      () => this.#retry(h),
      () => undefined,
    );
  }

  #retry(h: Held): void {
    if (this.#router || !this.#held.has(h)) return;
    if (this.#o.fastPath(h.req, h.res)) this.#held.delete(h);
  }

  /** Offers every waiting request to the fast path again (the first fetches have settled). */
  retryAll(): void {
    for (const h of [...this.#held]) this.#retry(h);
  }

  /** fastify is ready: it takes what is waiting, in arrival order, and every request the fast path leaves. */
  open(router: Handler): void {
    this.#router = router;
    const waiting = [...this.#held];
    this.#held.clear();
    for (const h of waiting) if (!this.#o.fastPath(h.req, h.res)) router(h.req, h.res);
  }

  /** The start failed: what waits is cut off, and so is every request from now on. */
  close(): void {
    this.#closed = true;
    for (const h of this.#held) h.req.socket.destroy();
    this.#held.clear();
  }
}
