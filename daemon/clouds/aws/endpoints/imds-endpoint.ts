/**
 * The IMDSv2-compatible endpoint as an endpoint module: its session tokens (one store per daemon), its
 * routes, and the hot path for the credentials GET.
 */
import type { ServerContext } from '../../../server/context.js';
import { cachedResponse, type CachedResponse, sendCached } from '../../../server/fast-path.js';
import { singleHeader } from '../../../server/guards.js';
import { handOutNow } from '../../../server/handout.js';
import type { EndpointModule } from '../../types.js';
import type { AwsCredentials } from '../credentials.js';
import { imdsRole, imdsRoutes } from './imds-routes.js';
import { ImdsTokenStore } from './imds-tokens.js';
import { imdsBodyText } from './wire.js';

const CREDENTIALS_PREFIX = '/latest/meta-data/iam/security-credentials/';

/** The 200 answer for a set of credentials, as the route sends it (same body, type and cache-control). */
const imdsResponses = new WeakMap<AwsCredentials, CachedResponse>();

export const imdsEndpoint: EndpointModule = {
  name: 'imds',
  create(ctx: ServerContext) {
    const tokens = new ImdsTokenStore(() => ctx.now());
    const served = ctx.metrics.requestCounter('imds', 200);
    return {
      routes: async (app) => app.register(imdsRoutes, { ctx, tokens }),
      label: (route) => (route === '/latest/api/token' ? 'imds-token' : route.startsWith('/latest/') ? 'imds' : undefined),
      fast(req, res, url) {
        if (!url.startsWith(CREDENTIALS_PREFIX)) return false;
        const token = singleHeader(req.rawHeaders, 'x-aws-ec2-metadata-token');
        if (typeof token !== 'string' || !tokens.isValidOn(req.socket, token)) return false;
        const profile = ctx.profiles.defaultOf('aws');
        const entry = profile === undefined ? undefined : ctx.profiles.get(profile);
        if (profile === undefined || entry === undefined) return false;
        // The role's name ends the path: compared in place, without cutting the path.
        const role = imdsRole(entry);
        if (url.length !== CREDENTIALS_PREFIX.length + role.length || !url.endsWith(role)) return false;
        const creds = entry.refresher.peek() as AwsCredentials | undefined;
        if (!creds || !handOutNow(ctx, req.socket, profile, 'imds', creds)) return false;
        let r = imdsResponses.get(creds);
        if (r === undefined) {
          r = cachedResponse('text/plain; charset=utf-8', imdsBodyText(creds, entry.refresher.lastUpdated() ?? new Date(ctx.now())));
          imdsResponses.set(creds, r);
        }
        sendCached(res, r);
        served.inc();
        return true;
      },
    };
  },
};
