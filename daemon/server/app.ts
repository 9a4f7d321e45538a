/**
 * The HTTP server: fastify with tight limits (tiny bodies, short timeouts,
 * bounded headers), the request guards as one hook, and the endpoints as
 * plugins. Errors are always JSON `{Code, Message}` and never carry a stack.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Endpoint } from '../clouds/types.js';
import { serverError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ServerContext } from './context.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createFastPath } from './fast-path.js';
import { hostAllowlist, registerGuards, type Binding } from './guards.js';
import { healthRoutes } from './health-routes.js';
import type { DaemonMetrics } from './metrics.js';
import { metricsRoutes } from './metrics-routes.js';
import { registerPeerGate } from './peer-gate.js';
import { guardSlowClients } from './slow-clients.js';

export interface ServerOptions {
  ctx: ServerContext;
  logger: Logger;
  /** The bound port and addresses, for the Host check; known only after listen. */
  binding: () => Binding;
  metrics: DaemonMetrics;
  /** The endpoint modules of every configured cloud, made for this daemon. */
  endpoints: readonly Endpoint[];
}

/** The endpoint family of a matched route, as a low-cardinality metrics label. */
function endpointLabel(route: string | undefined, endpoints: readonly Endpoint[]): string {
  if (!route) return 'unmatched';
  for (const e of endpoints) {
    const label = e.label(route);
    if (label !== undefined) return label;
  }
  return route.slice(1) || 'root';
}

const HTTP_OPTIONS = {
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

function noSchemaCompiler(): () => never {
  return () => {
    throw new Error('credport routes declare no schemas: give the route its checks in code, or restore fastify compilers');
  };
}

export function buildServer(o: ServerOptions): FastifyInstance {
  const allowed = hostAllowlist(o.binding);
  let closing = false;
  const handlers = o.endpoints.flatMap((e) => (e.fast ? [e.fast.bind(e)] : []));
  const fastPath = createFastPath({ ctx: o.ctx, allowed, logger: o.logger, closing: () => closing, handlers });
  const app = Fastify({
    // The node server is made here so that the credentials fast path runs before fastify's routing.
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const server = createServer(HTTP_OPTIONS, (req, res) => {
        if (!fastPath(req, res)) handler(req, res);
        slow.onRequest(req, res);
      });
      const slow = guardSlowClients(server, { headersMs: HTTP_OPTIONS.headersTimeout, requestMs: HTTP_OPTIONS.requestTimeout });
      return server;
    },
    loggerInstance: o.logger as FastifyBaseLogger,
    // Requests are logged by our onResponse hook, with fields chosen to carry no secret.
    logController: new LogController({ disableRequestLogging: true }),
    // A child logger per request (with its redaction set-up) is the largest per-request cost; below
    // debug level nothing per-request is logged, so requests share the daemon's logger.
    childLoggerFactory: (logger, bindings, opts) => (o.logger.isLevelEnabled('debug') ? logger.child(bindings, opts) : logger),
    bodyLimit: 1024,
    // No route declares a schema, so fastify's default compilers (ajv and fast-json-stringify, loaded
    // when the instance is built: about 100 ms of start-up and their memory) would never compile
    // anything. These stand in and say so loudly if a schema is ever added.
    schemaController: { compilersFactory: { buildValidator: noSchemaCompiler, buildSerializer: noSchemaCompiler } },
    // Real IMDS answers leaf paths with or without a trailing slash (AWS CLI v2 asks for
    // placement/availability-zone/), and paths with doubled slashes (the JS SDK v2 joins an endpoint
    // ending in "/" with "/latest/..."), so the router does too. Routes, and so the peer gate's
    // access class, are matched on the collapsed path.
    routerOptions: { maxParamLength: 100, caseSensitive: true, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    return503OnClosing: true,
    trustProxy: false,
    connectionTimeout: 15_000,
    keepAliveTimeout: 5_000,
    requestTimeout: 10_000,
    // Errors fastify raises before any hook (an undecodable URL, an over-long parameter) must neither
    // skip the {Code, Message} shape nor quote the request back.
    frameworkErrors: (err, _req, reply) => {
      const tooLong = err.statusCode === 414;
      const r = reply as unknown as FastifyReply;
      const e = tooLong ? serverError('RequestTargetTooLong', 'request target too long') : serverError('BadRequest', 'malformed request');
      void r.code(e.status).header('connection', 'close').send(e.body);
    },
    // Requests node's parser rejects still get the JSON error shape, then the connection closes.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      const body = JSON.stringify(serverError('BadRequest', 'malformed HTTP request').body);
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  });

  registerGuards(app, allowed);
  registerPeerGate(app, o.ctx.access, o.logger);
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });

  app.setNotFoundHandler((_req, reply) => {
    const e = serverError('NotFound', 'no such endpoint');
    return reply.code(e.status).send(e.body);
  });
  app.setErrorHandler((err: { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ code: err.code }, 'request failed');
    // fastify's own status (413, 415, ...) is kept; the code says which side is at fault.
    const e =
      status >= 500
        ? serverError('InternalError', 'unexpected error; see the daemon log')
        : serverError('BadRequest', 'the request could not be handled');
    return reply.code(status).send(e.body);
  });

  app.addHook('onResponse', (req, reply, done) => {
    o.metrics.request(endpointLabel(req.routeOptions.url, o.endpoints), reply.statusCode);
    if (o.logger.isLevelEnabled('debug'))
      req.log.debug(
        { method: req.method, path: req.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'request',
      );
    done();
  });

  void app.register(healthRoutes, { ctx: o.ctx });
  for (const e of o.endpoints) void app.register(e.routes);
  void app.register(metricsRoutes, { metrics: o.metrics });
  return app;
}
