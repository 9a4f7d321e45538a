/**
 * An opt-in emulation of the GCE metadata server, for tools that know no other
 * way to get a Google token: it serves the pre-refreshed access token of the
 * one profile marked for it. It serves exactly what google-auth-library
 * (gcp-metadata) and Python google-auth 1.x read (docs/clients.md lists
 * each request), under /computeMetadata/v1 as GCE does, plus `GET /`, Python's
 * availability probe.
 *
 * The protocol carries no secret, which is why it is opt-in and every route is
 * peer-checked. As on GCE, every response says `Metadata-Flavor: Google`, and a
 * request without that header (a browser, a confused proxy) or with a proxy's
 * X-Forwarded-For is refused with 403.
 *
 * The daemon's router ignores trailing slashes, so each directory is one route
 * (`instance` and `instance/` alike).
 */
import { proxyMarker } from '../../../server/proxy-headers.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { CREDENTIALS_ROUTE, googleError, type GcpProfileInfo, type GcpServing } from './serving.js';

export const METADATA_FLAVOR_HEADER = 'metadata-flavor';
export const METADATA_FLAVOR = 'Google';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
export const UNIVERSE_DOMAIN = 'googleapis.com';

const BASE = '/computeMetadata/v1';
const MAX_SCOPES = 50;
const MAX_SCOPE_LENGTH = 300;

/** The account as the metadata server names it: the impersonated service account, else `default` only. */
function accountEmail(info: GcpProfileInfo): string {
  return info.serviceAccount ?? 'default';
}

/**
 * Which requested scopes the profile's token does not carry. The token is one pre-refreshed
 * token per profile, so a request is served only when that token covers it: every scope asked
 * is one the profile has, or the profile has cloud-platform (Google Cloud client libraries ask
 * for cloud-platform plus their service's narrower scope, which cloud-platform already grants).
 */
export function uncoveredScopes(requested: string[], held: string[]): string[] {
  if (held.includes(CLOUD_PLATFORM_SCOPE)) return [];
  return requested.filter((s) => !held.includes(s));
}

function parseScopes(raw: unknown): string[] | Error {
  if (raw === undefined) return [];
  if (typeof raw !== 'string') return new Error('scopes must be given once, comma-separated');
  const scopes = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (scopes.length > MAX_SCOPES) return new Error(`at most ${MAX_SCOPES} scopes may be requested`);
  if (scopes.some((s) => s.length > MAX_SCOPE_LENGTH || !/^[\x21-\x7e]+$/.test(s)))
    return new Error('a requested scope is not a printable URL of at most 300 characters');
  return scopes;
}

function isRecursive(req: FastifyRequest): boolean {
  return (req.query as Record<string, unknown>).recursive === 'true';
}

/** Text as GCE sends it (`application/text`); Python google-auth reads any non-JSON type as text. */
function text(reply: FastifyReply, body: string): FastifyReply {
  return reply.type('application/text').send(body);
}

/**
 * JSON with exactly `Content-Type: application/json`: Python google-auth 1.x parses a body as
 * JSON only on that exact value, and fastify appends a charset to a JSON type given a string.
 */
function json(reply: FastifyReply, body: unknown): FastifyReply {
  return reply.header('content-type', 'application/json').send(Buffer.from(JSON.stringify(body), 'utf8'));
}

/** Google's front-end 404 page, in short. */
function notFound(reply: FastifyReply, why = 'The requested URL was not found on this server.'): FastifyReply {
  const page = `<!DOCTYPE html>\n<html lang=en>\n<title>Error 404 (Not Found)!!1</title>\n<p><b>404.</b> <ins>That’s an error.</ins>\n<p>${why}  <ins>That’s all we know.</ins>\n`;
  return reply.code(404).header('content-type', 'text/html; charset=UTF-8').send(page);
}

function forbidden(reply: FastifyReply, why: string): FastifyReply {
  return reply
    .code(403)
    .header('content-type', 'text/html; charset=UTF-8')
    .send(
      `<!DOCTYPE html>\n<html lang=en>\n<title>Error 403 (Forbidden)!!1</title>\n<p><b>403.</b> <ins>That’s an error.</ins>\n<p>${why}\n`,
    );
}

export const metadataRoutes: FastifyPluginAsync<{ serving: GcpServing; now?: () => number }> = async (app, { serving, now = Date.now }) => {
  // Every reply of this plugin, refusals and the peer gate's included, names the flavor.
  app.addHook('onSend', (_req, reply, payload, done) => {
    void reply.header(METADATA_FLAVOR_HEADER, METADATA_FLAVOR);
    done(null, payload);
  });

  app.addHook('onRequest', (req, reply, done) => {
    if (req.headers[METADATA_FLAVOR_HEADER] !== METADATA_FLAVOR) {
      void forbidden(
        reply,
        'Your client does not have permission to get this URL from this server. Missing Metadata-Flavor:Google header.',
      );
      return;
    }
    const proxied = proxyMarker(req.headers);
    if (proxied !== undefined) {
      void forbidden(
        reply,
        `Your client does not have permission to get this URL from this server. Request had a ${proxied} header and was refused.`,
      );
      return;
    }
    done();
  });

  /** The served profile and what it is, or undefined after the 404 is sent (none configured, or gone on reload). */
  function served(reply: FastifyReply): { profile: string; info: GcpProfileInfo } | undefined {
    const profile = serving.metadataProfile();
    const info = profile === undefined ? undefined : serving.info(profile);
    if (profile === undefined || info === undefined) {
      void notFound(reply, 'No credport profile is served by the metadata server.');
      return undefined;
    }
    return { profile, info };
  }

  function account(info: GcpProfileInfo, name: string): boolean {
    return name === 'default' || name === accountEmail(info);
  }

  function accountJson(info: GcpProfileInfo) {
    return { aliases: ['default'], email: accountEmail(info), scopes: info.scopes };
  }

  const get = (
    path: string,
    handler: (req: FastifyRequest<{ Params: { account: string } }>, reply: FastifyReply) => Promise<FastifyReply | undefined>,
  ) => app.get<{ Params: { account: string } }>(path, { config: CREDENTIALS_ROUTE }, handler);

  // Python google-auth's availability probe (GET on GCE_METADATA_IP).
  get('/', async (_req, reply) => (served(reply) ? text(reply, 'computeMetadata/\n') : reply));
  get('/computeMetadata', async (_req, reply) => (served(reply) ? text(reply, 'v1/\n') : reply));
  get(BASE, async (_req, reply) => (served(reply) ? text(reply, 'instance/\nproject/\nuniverse/\n') : reply));

  // gcp-metadata's availability probe.
  get(`${BASE}/instance`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    if (isRecursive(req))
      return json(reply, { serviceAccounts: { default: accountJson(s.info), [accountEmail(s.info)]: accountJson(s.info) } });
    return text(reply, 'service-accounts/\n');
  });

  get(`${BASE}/instance/service-accounts`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    const email = accountEmail(s.info);
    if (isRecursive(req)) return json(reply, { default: accountJson(s.info), [email]: accountJson(s.info) });
    return text(reply, email === 'default' ? 'default/\n' : `default/\n${email}/\n`);
  });

  // Python google-auth 1.x reads `default/?recursive=true` for email and scopes, then asks for the token under the email.
  get(`${BASE}/instance/service-accounts/:account`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    if (!account(s.info, req.params.account)) return notFound(reply);
    if (isRecursive(req)) return json(reply, accountJson(s.info));
    return text(reply, 'aliases\nemail\nscopes\ntoken\n');
  });

  get(`${BASE}/instance/service-accounts/:account/email`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    return account(s.info, req.params.account) ? text(reply, accountEmail(s.info)) : notFound(reply);
  });

  get(`${BASE}/instance/service-accounts/:account/aliases`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    return account(s.info, req.params.account) ? text(reply, 'default\n') : notFound(reply);
  });

  get(`${BASE}/instance/service-accounts/:account/scopes`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    return account(s.info, req.params.account) ? text(reply, s.info.scopes.map((x) => `${x}\n`).join('')) : notFound(reply);
  });

  get(`${BASE}/instance/service-accounts/:account/token`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    if (!account(s.info, req.params.account)) return notFound(reply);
    const requested = parseScopes((req.query as Record<string, unknown>).scopes);
    if (requested instanceof Error) return json(reply.code(400), googleError('invalid_request', requested.message));
    const missing = uncoveredScopes(requested, s.info.scopes);
    if (missing.length > 0) {
      return json(
        reply.code(403),
        googleError(
          'invalid_scope',
          `profile ${s.profile} holds a token for ${s.info.scopes.join(' ')}; it does not cover ${missing.join(' ')} (add it to the profile's scopes)`,
        ),
      );
    }
    const got = await serving.accessToken(s.profile, req.raw.socket);
    if (!got.ok) return json(reply.code(got.status), got.body);
    const expiresIn = Math.floor((got.value.expiration.getTime() - now()) / 1000);
    if (expiresIn < 1)
      return json(
        reply.code(503),
        googleError('temporarily_unavailable', `the access token of profile ${s.profile} has expired; credport is refreshing it`),
      );
    return json(reply.header('cache-control', 'no-store'), {
      access_token: got.value.accessToken,
      expires_in: expiresIn,
      token_type: 'Bearer',
    });
  });

  get(`${BASE}/project`, async (req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    const { projectId, projectNumber } = s.info;
    if (isRecursive(req))
      return json(reply, {
        ...(projectNumber === undefined ? {} : { numericProjectId: Number(projectNumber) }),
        ...(projectId === undefined ? {} : { projectId }),
      });
    return text(reply, `${projectNumber === undefined ? '' : 'numeric-project-id\n'}${projectId === undefined ? '' : 'project-id\n'}`);
  });

  get(`${BASE}/project/project-id`, async (_req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    return s.info.projectId === undefined ? notFound(reply, 'The profile served has no project_id.') : text(reply, s.info.projectId);
  });

  // gcloud's GCE check; served only when the profile knows its project number (no made-up number).
  get(`${BASE}/project/numeric-project-id`, async (_req, reply) => {
    const s = served(reply);
    if (!s) return reply;
    return s.info.projectNumber === undefined
      ? notFound(reply, 'The profile served has no project number.')
      : text(reply, s.info.projectNumber);
  });

  get(`${BASE}/universe`, async (_req, reply) => (served(reply) ? text(reply, 'universe-domain\n') : reply));
  get(`${BASE}/universe/universe-domain`, async (_req, reply) => (served(reply) ? text(reply, UNIVERSE_DOMAIN) : reply));

  // Anything else (identity tokens, numeric-project-id, attributes, ...) is not served.
  get('/computeMetadata/*', async (_req, reply) => notFound(reply));
};
