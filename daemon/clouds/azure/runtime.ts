/** The Azure half that runs: the azure-federated provider and the managed identity endpoint. */
import { defaultSubject } from '../../identity/jwt.js';
import { openRsaSigner } from '../../keys/open-signer.js';
import type { KeySigner } from '../../keys/signer.js';
import { bearerTokenId } from '../gcp/managed-provider.js';
import type { GcpWifProfileConfig } from '../gcp/schema.js';
import { CLOUD_PLATFORM_SCOPE } from '../gcp/scopes.js';
import { endpointBase } from '../gcp/wif/endpoint.js';
import { gcpWifProviderOptions } from '../gcp/wif/from-profile.js';
import { GcpWifProvider } from '../gcp/wif/provider.js';
import type { CloudRuntime, EndpointModule, ManagedProvider, ProfileBase, ProviderDeps } from '../types.js';
import { DeviceAssertionSource } from './assertion/device-assertion.js';
import { GoogleIdTokenSource } from './assertion/google-id-token.js';
import type { AssertionSource } from './assertion/source.js';
import type { AzureCredentials } from './credentials.js';
import { managedIdentityRoutes } from './endpoints/managed-identity-routes.js';
import { configError } from './entra/errors.js';
import { AzureFederatedProvider } from './entra/provider.js';
import { federatedTokenFile } from './federated-token-file.js';
import { ensureIdentityHeader } from './identity-header-secret.js';
import type { AzureFederatedProfileConfig } from './schema.js';
import { DEVICE_ASSERTION } from './spec.js';

/** credport's own RS256 signer: the [rsa_key], or a [key] that is itself RSA (a PKCS#11 token's). */
function deviceSource(name: string, p: AzureFederatedProfileConfig, deps: ProviderDeps): AssertionSource {
  const oidc = deps.config.oidc;
  if (!oidc) throw configError(`profile ${name}: azure-federated needs an [oidc] table (the assertion's issuer)`);
  const rsaKey = deps.config.rsaKey;
  let open: () => Promise<KeySigner>;
  if (rsaKey) open = () => openRsaSigner(rsaKey, deps.tuning.now ? { now: deps.tuning.now } : {});
  else if (deps.signer.algorithm === 'RS256') open = async () => deps.signer;
  else
    throw configError(
      `profile ${name}: assertion "device" needs an RSA key and the device key is ${deps.signer.algorithm} (Entra ID refuses it). Add an [rsa_key] table (credport init --rsa-key), or chain through a gcp-wif profile with assertion = "NAME"`,
    );
  return new DeviceAssertionSource({
    openSigner: open,
    ownsSigner: rsaKey !== undefined,
    issuer: oidc.issuer,
    // The device's one identity: the same sub AWS and Google see.
    subject: oidc.subject ?? defaultSubject(deps.signer),
    audience: p.audience,
    lifetimeSeconds: oidc.token_lifetime_seconds,
    now: deps.tuning.now ?? Date.now,
  });
}

/** Google signs the assertion: the gcp-wif profile's federated token asks generateIdToken for its service account. */
function googleSource(name: string, p: AzureFederatedProfileConfig, deps: ProviderDeps): AssertionSource {
  const g = deps.config.profiles.get(p.assertion) as GcpWifProfileConfig | undefined;
  if (g?.type !== 'gcp-wif' || !g.service_account)
    throw configError(`profile ${name}: assertion ${p.assertion} is not a gcp-wif profile with a service_account`);
  const { service_account: serviceAccount, ...federatedOnly } = g;
  // Without impersonation the provider's fetch is the federated token, which generateIdToken needs (cloud-platform).
  const federated = new GcpWifProvider(
    gcpWifProviderOptions(p.assertion, { ...federatedOnly, scopes: [CLOUD_PLATFORM_SCOPE] }, deps.config.oidc, deps.signer, deps.tuning),
  );
  return new GoogleIdTokenSource({
    federated,
    profile: p.assertion,
    serviceAccount,
    iamEndpoint: endpointBase(g.iamcredentials_endpoint, 'iamcredentials_endpoint'),
    audience: p.audience,
    ...(deps.tuning.requestTimeoutMs !== undefined ? { requestTimeoutMs: deps.tuning.requestTimeoutMs } : {}),
    ...(deps.tuning.maxBodyBytes !== undefined ? { maxBodyBytes: deps.tuning.maxBodyBytes } : {}),
    now: deps.tuning.now ?? Date.now,
  });
}

function createProvider(name: string, profile: ProfileBase, deps: ProviderDeps): ManagedProvider<AzureCredentials> {
  const p = profile as AzureFederatedProfileConfig;
  const authority = endpointBase(p.authority, 'authority');
  const assertion = p.assertion === DEVICE_ASSERTION ? deviceSource(name, p, deps) : googleSource(name, p, deps);
  const provider = new AzureFederatedProvider({
    assertion,
    tenantId: p.tenant_id,
    clientId: p.client_id,
    scopes: p.scopes,
    authority,
    ...(p.federated_token_file ? { federatedTokenFile: federatedTokenFile(deps.config.daemon.tokenFile, name) } : {}),
    ...(deps.tuning.maxAttempts !== undefined ? { maxAttempts: deps.tuning.maxAttempts } : {}),
    ...(deps.tuning.requestTimeoutMs !== undefined ? { requestTimeoutMs: deps.tuning.requestTimeoutMs } : {}),
    ...(deps.tuning.maxBodyBytes !== undefined ? { maxBodyBytes: deps.tuning.maxBodyBytes } : {}),
    ...(deps.tuning.now !== undefined ? { now: deps.tuning.now } : {}),
  });
  return {
    get unattended() {
      return provider.unattended;
    },
    fetch: (signal) => provider.fetch(signal),
    credentialId: (c) => bearerTokenId(c.tokens[0]?.accessToken ?? ''),
    describe: () => ({
      ...provider.describe(),
      details: { tenantId: p.tenant_id, clientId: p.client_id, scopes: p.scopes.join(' ') },
    }),
    destroy: () => provider.destroy(),
  };
}

const managedIdentity: EndpointModule = {
  name: 'azure',
  create(ctx) {
    // Read at start, created when absent; shells hold it in IDENTITY_HEADER, so it never rotates.
    const secret = ensureIdentityHeader(ctx.tokenFile);
    return {
      routes: async (app) => app.register(managedIdentityRoutes, { ctx, secret: () => secret }),
      label: (route) => (route.startsWith('/azure/') ? 'azure-mi' : undefined),
    };
  },
};

export const azureRuntime: CloudRuntime = { createProvider, endpoints: [managedIdentity] };
