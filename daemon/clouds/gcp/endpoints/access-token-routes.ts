/**
 * A gcp profile's access token for `credport auth`, behind the daemon's bearer token (the same lock as
 * the ECS endpoint): the CLI asks the daemon's cache rather than exchanging again.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerContext } from '../../../server/context.js';
import { handOut } from '../../../server/handout.js';
import { daemonTokenMatches } from '../../../server/token.js';
import type { GcpAccessToken } from '../credentials.js';
import { CREDENTIALS_ROUTE, googleError } from './serving.js';

export function accessTokenPath(profile: string): string {
  return `/gcp/v1/profiles/${encodeURIComponent(profile)}/access-token`;
}

/** What the route answers; `credport auth` parses it back. */
export interface AccessTokenBody {
  access_token: string;
  token_type: 'Bearer';
  expires_at: string;
  scopes: string[];
}

export const accessTokenRoutes: FastifyPluginAsync<{ ctx: ServerContext }> = async (app, { ctx }) => {
  app.get<{ Params: { profile: string } }>('/gcp/v1/profiles/:profile/access-token', { config: CREDENTIALS_ROUTE }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || auth.length === 0 || !daemonTokenMatches(ctx, auth)) {
      return reply.code(401).send(googleError('unauthorized', 'Authorization must be the daemon token (see the token_file setting)'));
    }
    const r = await handOut<GcpAccessToken>(ctx, req.raw.socket, req.params.profile, 'auth', 'gcp');
    if (!r.ok) return reply.code(r.status).send(googleError(r.body.Code, r.body.Message));
    const body: AccessTokenBody = {
      access_token: r.credentials.accessToken,
      token_type: 'Bearer',
      expires_at: r.credentials.expiration.toISOString(),
      scopes: r.credentials.scopes,
    };
    return reply.send(body);
  });
};
