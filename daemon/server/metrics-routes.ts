/** GET /metrics: Prometheus text format. No token: it holds counts and profile names, nothing secret. */
import type { FastifyPluginAsync } from 'fastify';
import type { DaemonMetrics } from './metrics.js';

export const metricsRoutes: FastifyPluginAsync<{ metrics: DaemonMetrics }> = async (app, { metrics }) => {
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });
};
