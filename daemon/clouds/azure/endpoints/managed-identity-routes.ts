/**
 * The App Service managed identity protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER), which
 * ManagedIdentityCredential and DefaultAzureCredential use unmodified, in JavaScript and Python alike:
 * GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=R with X-IDENTITY-HEADER. The endpoint is
 * /azure/identity for the default Azure profile and /azure/identity/NAME for any other. It serves the
 * profile's pre-refreshed token for R, which must be one of the profile's scopes: one token per resource.
 *
 * The header is a per-install secret compared in constant time; the peer gate and the profile's
 * executable rule apply as on every credential route, and a proxied request is refused.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../../../server/context.js';
import { handOut } from '../../../server/handout.js';
import { proxyMarker } from '../../../server/proxy-headers.js';
import { ignoreRequestBodies } from '../../../server/request-bodies.js';
import { tokensEqual } from '../../../server/token.js';
import { type AzureCredentials, tokenFor } from '../credentials.js';

export const IDENTITY_PATH = '/azure/identity';
export const IDENTITY_HEADER = 'x-identity-header';
export const API_VERSION = '2019-08-01';
const MAX_RESOURCE_LENGTH = 512;

export function identityPath(profile: string | undefined): string {
  return profile === undefined ? IDENTITY_PATH : `${IDENTITY_PATH}/${encodeURIComponent(profile)}`;
}

/** The protocol's answer; expires_on in epoch seconds as a string of digits (Python int()s it). */
export interface ManagedIdentityBody {
  access_token: string;
  expires_on: string;
  resource: string;
  token_type: 'Bearer';
  client_id: string;
}

function refuse(reply: FastifyReply, status: number, error: string, description: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error, error_description: description });
}

export const managedIdentityRoutes: FastifyPluginAsync<{ ctx: ServerContext; secret: () => string }> = async (app, { ctx, secret }) => {
  ignoreRequestBodies(app);

  async function serve(req: FastifyRequest, reply: FastifyReply, profile: string | undefined) {
    const proxied = proxyMarker(req.headers);
    if (proxied !== undefined) return refuse(reply, 403, 'forbidden', `a request with a ${proxied} header is refused`);
    const header = req.headers[IDENTITY_HEADER];
    if (typeof header !== 'string' || header === '')
      return refuse(reply, 401, 'unauthorized', 'X-IDENTITY-HEADER required; set IDENTITY_HEADER (see `credport env`)');
    if (!tokensEqual(header, secret())) return refuse(reply, 401, 'unauthorized', 'X-IDENTITY-HEADER does not match (see `credport env`)');
    const q = req.query as Record<string, unknown>;
    if (q['api-version'] !== API_VERSION)
      return refuse(reply, 400, 'invalid_request', `api-version must be ${API_VERSION} (the App Service managed identity protocol)`);
    const resource = q.resource;
    if (typeof resource !== 'string' || resource === '' || resource.length > MAX_RESOURCE_LENGTH || !/^[\x21-\x7e]+$/.test(resource))
      return refuse(reply, 400, 'invalid_request', 'resource must be given once, a URI of at most 512 characters');
    const name = profile ?? ctx.profiles.defaultOf('azure');
    if (name === undefined) return refuse(reply, 404, 'not_found', 'no Azure profile is configured');
    const result = await handOut<AzureCredentials>(ctx, req.raw.socket, name, 'azure-mi', 'azure');
    if (!result.ok) return refuse(reply, result.status, result.body.Code, result.body.Message);
    const c = result.credentials;
    const token = tokenFor(c, resource);
    if (!token)
      return refuse(
        reply,
        400,
        'invalid_resource',
        `profile ${name} holds tokens for ${c.tokens.map((t) => t.resource).join(', ')}; add ${resource}/.default to its scopes for this one`,
      );
    const body: ManagedIdentityBody = {
      access_token: token.accessToken,
      expires_on: String(Math.floor(token.expiration.getTime() / 1000)),
      resource,
      token_type: 'Bearer',
      client_id: c.clientId,
    };
    return reply.header('cache-control', 'no-store').type('application/json; charset=utf-8').send(JSON.stringify(body));
  }

  const config = { access: 'credentials' as const };
  app.get(IDENTITY_PATH, { config }, (req, reply) => serve(req, reply, undefined));
  app.get<{ Params: { profile: string } }>(`${IDENTITY_PATH}/:profile`, { config }, (req, reply) => serve(req, reply, req.params.profile));
};
