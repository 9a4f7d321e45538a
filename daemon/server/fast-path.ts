/**
 * The two requests SDKs make over and over, answered before fastify sees
 * them: a credentials GET (ECS or IMDS) that passes every check and finds
 * credentials ready to serve. It runs the same guard (checkRequest), the same
 * token checks and the same cached bodies as the routes; anything else at all
 * (an error to report, a refresh to wait for, a peer not yet identified or
 * not allowed, a process still being looked up, debug logging on, the server
 * closing) falls through to fastify, which answers it the usual way.
 * fastify's own per-request work (request/reply objects, hooks, routing) is
 * about half of the cost of such a request; this keeps credport close to a
 * bare node server on its hot path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logging/logger.js';
import type { ServerContext } from './context.js';
import { checkRequest } from './guards.js';
import { handOutNow } from './handout.js';
import { allowedNow } from './peer-gate.js';
import type { DaemonMetrics } from './metrics.js';
import { tokensEqual } from './token.js';
import { ecsBodyText, imdsBodyText } from '../clouds/aws/endpoints/wire.js';

const ECS_PATH = /^\/v1\/credentials(?:\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63}))?$/;
const IMDS_PREFIX = '/latest/meta-data/iam/security-credentials/';

export interface FastPathOptions {
  ctx: ServerContext;
  allowed: () => Set<string>;
  metrics: DaemonMetrics;
  logger: Logger;
  closing: () => boolean;
}

function send(res: ServerResponse, contentType: string, body: string): void {
  res.writeHead(200, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
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
  const { ctx } = o;
  return (req, res) => {
    if (req.method !== 'GET' || o.closing() || o.logger.isLevelEnabled('debug')) return false;
    const url = collapseSlashes(req.url ?? '');
    if (checkRequest(req, o.allowed()) !== undefined) return false;
    if (!allowedNow(ctx.access, req.socket, 'credentials')) return false;
    const ecs = ECS_PATH.exec(url);
    if (ecs) {
      const auth = req.headers.authorization;
      if (typeof auth !== 'string' || auth.length === 0 || !tokensEqual(auth, ctx.ecsToken)) return false;
      const profile = ecs[1] ?? ctx.defaultProfile;
      const creds = ctx.refreshers.get(profile)?.peek();
      if (!creds || req.headers['x-credport-command'] !== undefined) return false;
      if (!handOutNow(ctx, req.socket, profile, 'ecs', creds)) return false;
      send(res, 'application/json; charset=utf-8', ecsBodyText(creds));
      o.metrics.request('ecs', 200);
      return true;
    }
    if (url.startsWith(IMDS_PREFIX)) {
      const role = url.slice(IMDS_PREFIX.length);
      const token = req.headers['x-aws-ec2-metadata-token'];
      if (!ctx.imdsTokens.isValid(typeof token === 'string' ? token : undefined)) return false;
      const desc = ctx.descriptions.get(ctx.defaultProfile);
      if (!desc || role !== desc.roleArn.slice(desc.roleArn.lastIndexOf('/') + 1)) return false;
      const r = ctx.refreshers.get(ctx.defaultProfile);
      const creds = r?.peek();
      if (!r || !creds) return false;
      if (!handOutNow(ctx, req.socket, ctx.defaultProfile, 'imds', creds)) return false;
      send(res, 'text/plain; charset=utf-8', imdsBodyText(creds, r.lastUpdated() ?? new Date(ctx.now())));
      o.metrics.request('imds', 200);
      return true;
    }
    return false;
  };
}
