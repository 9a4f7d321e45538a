/**
 * The ECS container-credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI):
 * GET /v1/credentials for the default profile, /v1/credentials/<profile> for
 * any other, each requiring the daemon's token in Authorization.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { serverError } from '../../../errors.js';
import type { ServerContext } from '../../../server/context.js';
import { handOut } from '../../../server/handout.js';
import { ignoreRequestBodies } from '../../../server/request-bodies.js';
import { daemonTokenMatches } from '../../../server/token.js';
import type { AwsCredentials } from '../credentials.js';
import { ecsBodyText } from './wire.js';

/** The CLI commands that fetch through the ECS route and name themselves in the audit log. */
const CLI_COMMANDS = new Set(['auth', 'exec']);

export const ecsRoutes: FastifyPluginAsync<{ ctx: ServerContext }> = async (app, { ctx }) => {
  ignoreRequestBodies(app);
  async function serve(req: FastifyRequest, reply: FastifyReply, profile: string) {
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || auth.length === 0) {
      const e = serverError(
        'MissingToken',
        'Authorization header required; set AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (see `credport env`)',
      );
      return reply.code(e.status).send(e.body);
    }
    if (!daemonTokenMatches(ctx, auth)) {
      const e = serverError('InvalidToken', 'Authorization does not match the daemon token (see `credport env`)');
      return reply.code(e.status).send(e.body);
    }
    // `credport auth` (or exec) says so, for the audit trail; attribution only, like the executable.
    const asked = req.headers['x-credport-command'];
    const endpoint = typeof asked === 'string' && CLI_COMMANDS.has(asked) ? asked : 'ecs';
    const result = await handOut<AwsCredentials>(ctx, req.raw.socket, profile, endpoint, 'aws');
    if (!result.ok) return reply.code(result.status).send(result.body);
    req.log.debug({ profile }, 'served credentials (ecs)');
    return reply.header('cache-control', 'no-store').type('application/json; charset=utf-8').send(ecsBodyText(result.credentials));
  }

  const config = { access: 'credentials' as const };
  app.get('/v1/credentials', { config }, (req, reply) => serve(req, reply, ctx.profiles.defaultOf('aws') ?? ''));
  app.get<{ Params: { profile: string } }>('/v1/credentials/:profile', { config }, (req, reply) => serve(req, reply, req.params.profile));
};
