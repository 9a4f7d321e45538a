/**
 * The ECS container-credentials endpoint as an endpoint module: its routes, and the hot path for the
 * GET an SDK repeats (token checked, credentials ready, peer known).
 */
import type { ServerContext } from '../../../server/context.js';
import { cachedResponse, responseCache, sendCached } from '../../../server/fast-path.js';
import { singleHeader } from '../../../server/guards.js';
import { handOutNow } from '../../../server/handout.js';
import { connectionTokenEqual } from '../../../server/token.js';
import type { EndpointModule } from '../../types.js';
import type { AwsCredentials } from '../credentials.js';
import { ecsRoutes } from './ecs-routes.js';
import { ecsBodyText } from './wire.js';

const DEFAULT_PATH = '/v1/credentials';
const ECS_PATH = /^\/v1\/credentials(?:\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63}))?$/;

/** The 200 answer for a set of credentials, as the route sends it (same body, type and cache-control). */
const ecsResponse = responseCache((c: AwsCredentials) => cachedResponse('application/json; charset=utf-8', ecsBodyText(c)));

export const ecsEndpoint: EndpointModule = {
  name: 'ecs',
  create(ctx: ServerContext) {
    const served = ctx.metrics.requestCounter('ecs', 200);
    return {
      routes: async (app) => app.register(ecsRoutes, { ctx }),
      label: (route) => (route.startsWith('/v1/credentials') ? 'ecs' : undefined),
      fast(req, res, url) {
        let profile: string;
        // The default profile's path is what SDKs ask for: an exact match spares the regular expression.
        if (url === DEFAULT_PATH) profile = ctx.profiles.defaultOf('aws') ?? '';
        else {
          const ecs = ECS_PATH.exec(url);
          if (!ecs) return false;
          profile = ecs[1] ?? ctx.profiles.defaultOf('aws') ?? '';
        }
        const raw = req.rawHeaders;
        // Anything unusual (no token, a token sent twice, the CLI naming itself) is the route's to answer.
        const auth = singleHeader(raw, 'authorization');
        if (typeof auth !== 'string' || auth.length === 0 || !connectionTokenEqual(req.socket, auth, ctx.daemonToken)) return false;
        const entry = ctx.profiles.get(profile);
        if (entry?.cloud !== 'aws' || singleHeader(raw, 'x-credport-command') !== undefined) return false;
        const creds = entry.refresher.peek() as AwsCredentials | undefined;
        if (!creds || !handOutNow(ctx, req.socket, profile, 'ecs', creds)) return false;
        sendCached(res, ecsResponse(creds));
        served.inc();
        return true;
      },
    };
  },
};
