/**
 * The ECS container-credentials endpoint as an endpoint module: its routes, and the hot path for the
 * GET an SDK repeats (token checked, credentials ready, peer known).
 */
import type { ServerContext } from '../../../server/context.js';
import { sendFast } from '../../../server/fast-path.js';
import { handOutNow } from '../../../server/handout.js';
import { connectionTokenEqual } from '../../../server/token.js';
import type { EndpointModule } from '../../types.js';
import type { AwsCredentials } from '../credentials.js';
import { ecsRoutes } from './ecs-routes.js';
import { ecsBodyText } from './wire.js';

const ECS_PATH = /^\/v1\/credentials(?:\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63}))?$/;

export const ecsEndpoint: EndpointModule = {
  name: 'ecs',
  create(ctx: ServerContext) {
    return {
      routes: async (app) => app.register(ecsRoutes, { ctx }),
      label: (route) => (route.startsWith('/v1/credentials') ? 'ecs' : undefined),
      fast(req, res, url) {
        const ecs = ECS_PATH.exec(url);
        if (!ecs) return false;
        const auth = req.headers.authorization;
        if (typeof auth !== 'string' || auth.length === 0 || !connectionTokenEqual(req.socket, auth, ctx.daemonToken)) return false;
        const profile = ecs[1] ?? ctx.profiles.defaultOf('aws') ?? '';
        const entry = ctx.profiles.get(profile);
        if (entry?.cloud !== 'aws' || req.headers['x-credport-command'] !== undefined) return false;
        const creds = entry.refresher.peek() as AwsCredentials | undefined;
        if (!creds || !handOutNow(ctx, req.socket, profile, 'ecs', creds)) return false;
        sendFast(res, 'application/json; charset=utf-8', ecsBodyText(creds));
        ctx.metrics.request('ecs', 200);
        return true;
      },
    };
  },
};
