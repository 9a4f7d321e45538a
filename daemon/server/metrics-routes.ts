/**
 * GET /metrics: Prometheus text format. It names profiles and executables, so
 * it is served to peers that may monitor (the daemon's user, allow_uids,
 * monitor_uids), like the /health detail. Nothing secret is in it.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { DaemonMetrics } from './metrics.js';

export const metricsRoutes: FastifyPluginAsync<{ metrics: DaemonMetrics }> = async (app, { metrics }) => {
  app.get('/metrics', { config: { access: 'monitor' } }, async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });
};
