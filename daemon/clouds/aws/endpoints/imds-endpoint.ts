/**
 * The IMDSv2-compatible endpoint as an endpoint module: its session tokens (one store per daemon), its
 * routes, and the hot path for the credentials GET.
 */
import type { ServerContext } from '../../../server/context.js';
import { sendFast } from '../../../server/fast-path.js';
import { handOutNow } from '../../../server/handout.js';
import type { EndpointModule } from '../../types.js';
import type { AwsCredentials } from '../credentials.js';
import { imdsInstance, imdsRoutes } from './imds-routes.js';
import { ImdsTokenStore } from './imds-tokens.js';
import { imdsBodyText } from './wire.js';

const CREDENTIALS_PREFIX = '/latest/meta-data/iam/security-credentials/';

export const imdsEndpoint: EndpointModule = {
  name: 'imds',
  create(ctx: ServerContext) {
    const tokens = new ImdsTokenStore(() => ctx.now());
    return {
      routes: async (app) => app.register(imdsRoutes, { ctx, tokens }),
      label: (route) => (route === '/latest/api/token' ? 'imds-token' : route.startsWith('/latest/') ? 'imds' : undefined),
      fast(req, res, url) {
        if (!url.startsWith(CREDENTIALS_PREFIX)) return false;
        const token = req.headers['x-aws-ec2-metadata-token'];
        if (!tokens.isValid(typeof token === 'string' ? token : undefined)) return false;
        const profile = ctx.profiles.defaultOf('aws');
        if (profile === undefined || !ctx.profiles.get(profile)) return false;
        const { entry, role } = imdsInstance(ctx);
        if (url.slice(CREDENTIALS_PREFIX.length) !== role) return false;
        const creds = entry.refresher.peek() as AwsCredentials | undefined;
        if (!creds || !handOutNow(ctx, req.socket, profile, 'imds', creds)) return false;
        sendFast(res, 'text/plain; charset=utf-8', imdsBodyText(creds, entry.refresher.lastUpdated() ?? new Date(ctx.now())));
        ctx.metrics.request('imds', 200);
        return true;
      },
    };
  },
};
