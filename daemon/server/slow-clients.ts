/**
 * Cuts off clients too slow to send their request: a connection must deliver each request's headers
 * within `headersMs` of opening (or of its previous answer), and a request's body within `requestMs` of
 * its headers. node enforces its own headersTimeout and requestTimeout only from a timer that runs for
 * the server's whole life (connectionsCheckingInterval): at the 1 s that a 10 s promise needs, an idle
 * daemon on a laptop woke every second for nobody. This checks once a second too, but only while a
 * connection is open: with none, no timer exists at all.
 *
 * No clock is read per request: each connection counts the checks it has sat through without progress,
 * and progress (a request's headers, an answer finished) sets the count back to zero. A connection is cut
 * off after between `limit` and `limit + 1` seconds without progress.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const TICK_MS = 1_000;

interface Watched {
  /** Checks passed without progress. */
  ticks: number;
  /** The request being received or answered; undefined while waiting for the next request's headers. */
  req: IncomingMessage | undefined;
}

const kWatched = Symbol('credport.slowClients');
type WatchedSocket = Socket & { [kWatched]?: Watched };

export interface SlowClientGuard {
  /** Called by the request handler once it has handed the request on (answered or not). */
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  /** Open connections being watched (tests). */
  readonly watching: number;
  /** Whether the once-a-second check is armed (tests): only while connections are open. */
  readonly armed: boolean;
  readonly headersMs: number;
  readonly requestMs: number;
}

const kGuard = Symbol('credport.slowClientGuard');

/** The guard watching a server, if any (tests and diagnostics). */
export function slowClientGuardOf(server: Server): SlowClientGuard | undefined {
  return (server as Server & { [kGuard]?: SlowClientGuard })[kGuard];
}

export function guardSlowClients(server: Server, o: { headersMs: number; requestMs: number }): SlowClientGuard {
  const headersLimit = Math.ceil(o.headersMs / TICK_MS);
  const requestLimit = Math.ceil(o.requestMs / TICK_MS);
  const sockets = new Set<WatchedSocket>();
  let timer: NodeJS.Timeout | undefined;

  const cut = (socket: WatchedSocket): void => {
    sockets.delete(socket);
    // As node's own check does: its error goes to the server's clientError handler, which answers (when
    // nothing was sent yet) and closes.
    const err = Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    if (server.listenerCount('clientError') > 0) server.emit('clientError', err, socket);
    else socket.destroy();
  };

  const check = (): void => {
    for (const socket of sockets) {
      const w = socket[kWatched]!;
      // A request fully received waits on the daemon, not on the client.
      if (w.req !== undefined && w.req.complete) continue;
      w.ticks++;
      if (w.ticks > (w.req === undefined ? headersLimit : requestLimit)) cut(socket);
    }
    if (sockets.size === 0) disarm();
  };

  const disarm = (): void => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };

  server.on('connection', (socket: WatchedSocket) => {
    socket[kWatched] = { ticks: 0, req: undefined };
    sockets.add(socket);
    // unref: open connections keep the daemon running, never this timer.
    timer ??= setInterval(check, TICK_MS).unref();
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0) disarm();
    });
  });

  const answered = (req: IncomingMessage, w: Watched): void => {
    // A pipelined request may already be the current one: its clock is its own.
    if (w.req !== req) return;
    w.req = undefined;
    w.ticks = 0;
  };

  const guard: SlowClientGuard = {
    headersMs: o.headersMs,
    requestMs: o.requestMs,
    onRequest(req, res) {
      const w = (req.socket as WatchedSocket)[kWatched];
      if (w === undefined) return;
      w.ticks = 0;
      // The fast path has answered by now (synchronously); only a slower answer needs a listener.
      if (res.writableEnded) {
        w.req = undefined;
        return;
      }
      w.req = req;
      res.once('finish', () => answered(req, w));
    },
    get watching() {
      return sockets.size;
    },
    get armed() {
      return timer !== undefined;
    },
  };
  (server as Server & { [kGuard]?: SlowClientGuard })[kGuard] = guard;
  return guard;
}
