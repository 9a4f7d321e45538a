/**
 * GET /health. Anyone on loopback gets the overall state and version (a
 * monitoring agent of another user can tell "up and healthy"); the profile
 * detail (names, role ARNs, errors, expiries) goes only to peers that may
 * monitor: the daemon's user, allow_uids and monitor_uids. No secret either way.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerContext } from './context.js';
import { decide } from './peer-gate.js';

export const healthRoutes: FastifyPluginAsync<{ ctx: ServerContext }> = async (app, { ctx }) => {
  app.get('/health', async (req, reply) => {
    const report = ctx.health();
    const code = report.status === 'ok' ? 200 : 503;
    reply.code(code).header('cache-control', 'no-store');
    const peer = await ctx.access.identifier.identify(req.raw.socket);
    if (decide(peer, 'monitor', ctx.access.policy()).ok) return reply.send(report);
    return reply.send({
      status: report.status,
      version: report.version,
      detail: "profile detail is shown to the daemon's user and monitor_uids only",
    });
  });
};
