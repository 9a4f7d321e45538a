/**
 * An IMDSv2-compatible endpoint for SDKs that only know EC2 metadata
 * (AWS_EC2_METADATA_SERVICE_ENDPOINT). Token-only: there is no IMDSv1 mode.
 * It serves the default profile, under the IAM role's name as real IMDS does.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import type { ProfileEntry } from '../../../profiles/profile-set.js';
import type { ServerContext } from '../../../server/context.js';
import { handOut } from '../../../server/handout.js';
import type { AwsCredentials } from '../credentials.js';
import { parseTtl, type ImdsTokenStore } from './imds-tokens.js';
import { proxyMarker } from '../../../server/proxy-headers.js';
import { ignoreRequestBodies } from '../../../server/request-bodies.js';
import { awsTimestamp, imdsBodyText } from './wire.js';

const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';

const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

function roleName(roleArn: string): string {
  return roleArn.slice(roleArn.lastIndexOf('/') + 1);
}

/** A stable made-up instance profile id (real ones start with AIPA), derived from the role. */
function instanceProfileId(roleArn: string): string {
  const h = createHash('sha256')
    .update(roleArn)
    .digest('hex')
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '');
  return `AIPA${h.slice(0, 17)}`;
}

/**
 * The IAM role name IMDS shows for a profile, made once per profile description (a reload that changes
 * the profile brings a new entry, and with it a new description).
 */
const roles = new WeakMap<ProfileEntry['description'], string>();

export function imdsRole(entry: ProfileEntry): string {
  const d = entry.description;
  let role = roles.get(d);
  if (role === undefined) {
    role = roleName(d.details?.roleArn ?? d.principal);
    roles.set(d, role);
  }
  return role;
}

/** The default AWS profile as IMDS presents it; looked up per request because a reload may change it. */
export function imdsInstance(ctx: ServerContext) {
  const profile = ctx.profiles.defaultOf('aws') ?? '';
  const entry = ctx.profiles.get(profile);
  if (!entry) throw new Error(`default profile ${profile} has no provider`);
  const roleArn = entry.description.details?.roleArn ?? entry.description.principal;
  const region = entry.description.details?.region ?? '';
  return { profile, entry, roleArn, region, role: roleName(roleArn), account: roleArn.split(':')[4] ?? '' };
}
const instance = imdsInstance;

export const imdsRoutes: FastifyPluginAsync<{ ctx: ServerContext; tokens: ImdsTokenStore }> = async (app, { ctx, tokens }) => {
  ignoreRequestBodies(app);
  const text = (reply: FastifyReply, body: string) => reply.type('text/plain').send(body);

  // The whole IMDS tree hands out credentials or what leads to them: peers are checked first.
  const config = { access: 'credentials' as const };

  app.put('/latest/api/token', { config }, async (req, reply) => {
    const proxied = proxyMarker(req.headers);
    if (proxied !== undefined) {
      return reply.code(400).type('text/plain').send(`${proxied} is not allowed on a token request (it marks a proxied request)`);
    }
    const ttl = parseTtl(req.headers[TTL_HEADER]);
    if (ttl === undefined) {
      return reply.code(400).type('text/plain').send(`${TTL_HEADER} must be a whole number of seconds from 1 to 21600`);
    }
    return reply.header(TTL_HEADER, String(ttl)).type('text/plain').send(tokens.issue(ttl));
  });

  // Every metadata path needs a valid session token; IMDSv1 is not served.
  async function requireToken(req: FastifyRequest, reply: FastifyReply) {
    const t = req.headers[TOKEN_HEADER];
    if (!tokens.isValid(typeof t === 'string' ? t : undefined)) {
      return reply.code(401).type('text/plain').send('Unauthorized: a valid X-aws-ec2-metadata-token is required (IMDSv2 only)');
    }
    return undefined;
  }

  app.register(async (meta) => {
    meta.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), access: 'credentials' };
    });
    meta.addHook('preHandler', requireToken);

    meta.get('/latest/meta-data/iam/security-credentials/', async (_req, reply) => text(reply, instance(ctx).role));

    meta.get<{ Params: { role: string } }>('/latest/meta-data/iam/security-credentials/:role', async (req, reply) => {
      if (req.params.role !== instance(ctx).role) return reply.code(404).type('text/plain').send('Not Found');
      const { profile, entry } = instance(ctx);
      const result = await handOut<AwsCredentials>(ctx, req.raw.socket, profile, 'imds', 'aws');
      if (!result.ok) return reply.code(result.status).send(result.body);
      const last = entry.refresher.lastUpdated();
      req.log.debug({ profile }, 'served credentials (imds)');
      return reply
        .header('cache-control', 'no-store')
        .type('text/plain')
        .send(imdsBodyText(result.credentials, last ?? new Date(ctx.now())));
    });

    meta.get('/latest/meta-data/iam/info', async (_req, reply) => {
      const { roleArn, role, account } = instance(ctx);
      return reply.type('text/plain').send(
        JSON.stringify({
          Code: 'Success',
          LastUpdated: awsTimestamp(new Date(ctx.now())),
          InstanceProfileArn: `arn:aws:iam::${account}:instance-profile/${role}`,
          InstanceProfileId: instanceProfileId(roleArn),
        }),
      );
    });
    meta.get('/latest/meta-data/placement/region', async (_req, reply) => text(reply, instance(ctx).region));
    // botocore derives the region from the zone by dropping its last letter.
    meta.get('/latest/meta-data/placement/availability-zone', async (_req, reply) => text(reply, `${instance(ctx).region}a`));
    meta.get('/latest/dynamic/instance-identity/document', async (_req, reply) => {
      const { region, account } = instance(ctx);
      return reply.type('text/plain').send(JSON.stringify({ accountId: account, region, availabilityZone: `${region}a` }, null, 2));
    });
    // Anything else under /latest: 404 (with a token), so that the Java SDK falls back
    // from security-credentials-extended to the legacy path.
    meta.get('/latest/*', async (_req, reply) => reply.code(404).type('text/plain').send('Not Found'));
  });
};
