/** GET /health: 200 when every profile holds valid credentials, 503 otherwise. No token needed; no secret shown. */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerContext } from './context.js';

export const healthRoutes: FastifyPluginAsync<{ ctx: ServerContext }> = async (app, { ctx }) => {
  app.get('/health', async (_req, reply) => {
    const report = ctx.health();
    return reply.code(report.status === 'ok' ? 200 : 503).header('cache-control', 'no-store').send(report);
  });
};
