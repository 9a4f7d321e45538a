/** The Google Cloud half that runs: the gcp-wif provider and Google's local endpoints. */
import type { OidcConfig } from '../../config/schema.js';
import type { CloudRuntime, EndpointModule, ProfileBase, ProviderDeps } from '../types.js';
import { accessTokenRoutes } from './endpoints/access-token-routes.js';
import { metadataRoutes } from './endpoints/metadata-routes.js';
import { subjectTokenRoutes } from './endpoints/subject-token-routes.js';
import { manageGcpProvider } from './managed-provider.js';
import type { GcpWifProfileConfig } from './schema.js';
import { gcpServing } from './serving-impl.js';
import { ensureSubjectTokenSecret } from './subject-token-secret.js';
import { gcpWifProviderOptions } from './wif/from-profile.js';
import { GcpWifProvider } from './wif/provider.js';

function createProvider(name: string, profile: ProfileBase, deps: ProviderDeps) {
  const p = profile as GcpWifProfileConfig;
  const oidc: OidcConfig | undefined = deps.config.oidc;
  return manageGcpProvider(new GcpWifProvider(gcpWifProviderOptions(name, p, oidc, deps.signer, deps.tuning)), p);
}

/**
 * Google's local conventions: the subject-token URL of an external_account credential (behind a
 * per-install secret), the opt-in metadata server, and the access token for `credport auth`.
 */
const googleEndpoints: EndpointModule = {
  name: 'gcp',
  create(ctx) {
    // Read at start, created when absent; the external_account files hold it, so it never rotates.
    const secret = ensureSubjectTokenSecret(ctx.tokenFile);
    const serving = gcpServing(ctx, () => secret);
    return {
      routes: async (app) => {
        await app.register(subjectTokenRoutes, { serving });
        await app.register(metadataRoutes, { serving, now: ctx.now });
        await app.register(accessTokenRoutes, { ctx });
      },
      label: (route) =>
        route.startsWith('/computeMetadata') || route === '/' ? 'gcp-metadata' : route.startsWith('/gcp/') ? 'gcp' : undefined,
    };
  },
};

export const gcpRuntime: CloudRuntime = { createProvider, endpoints: [googleEndpoints] };
