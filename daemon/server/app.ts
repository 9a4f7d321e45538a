/**
 * fastify on the node server http-server.ts made: tight limits (tiny bodies,
 * short timeouts), the request guards as one hook, and the endpoints as
 * plugins. Errors are always JSON `{Code, Message}` and never carry a stack.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Endpoint } from '../clouds/types.js';
import { serverError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ServerContext } from './context.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { registerGuards } from './guards.js';
import { clientErrorHandler, type HttpFront } from './http-server.js';
import { healthRoutes } from './health-routes.js';
import type { DaemonMetrics } from './metrics.js';
import { metricsRoutes } from './metrics-routes.js';
import { registerPeerGate } from './peer-gate.js';

export interface ServerOptions {
  ctx: ServerContext;
  logger: Logger;
  /** The node server, already listening, and the fast path in front of fastify. */
  front: HttpFront;
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

function noSchemaCompiler(): () => never {
  return () => {
    throw new Error('credport routes declare no schemas: give the route its checks in code, or restore fastify compilers');
  };
}

export interface BuiltServer {
  app: FastifyInstance;
  /** fastify's request handler: give it to the front (HeldRequests.open) once the app is ready. */
  router: (req: IncomingMessage, res: ServerResponse) => void;
}

export function buildServer(o: ServerOptions): BuiltServer {
  const { front } = o;
  let router: BuiltServer['router'] | undefined;
  const app = Fastify({
    // The server already listens (http-server.ts), with the credentials fast path in front.
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      router = handler;
      // fastify adds the same handler for requests node cannot parse (clientErrorHandler below).
      front.server.off('clientError', clientErrorHandler);
      return front.server;
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
    // No connectionTimeout, keepAliveTimeout or requestTimeout here: fastify applies them only to a server
    // it makes itself. Ours comes made (http-server.ts: HTTP_OPTIONS and the slow-client guard).
    // Errors fastify raises before any hook (an undecodable URL, an over-long parameter) must neither
    // skip the {Code, Message} shape nor quote the request back.
    frameworkErrors: (err, _req, reply) => {
      const tooLong = err.statusCode === 414;
      const r = reply as unknown as FastifyReply;
      const e = tooLong ? serverError('RequestTargetTooLong', 'request target too long') : serverError('BadRequest', 'malformed request');
      void r.code(e.status).header('connection', 'close').send(e.body);
    },
    clientErrorHandler,
  });

  registerGuards(app, front.allowed);
  registerPeerGate(app, o.ctx.access, o.logger);
  app.addHook('preClose', (done) => {
    front.markClosing();
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
  if (!router) throw new Error('fastify did not ask for its server');
  return { app, router };
}
