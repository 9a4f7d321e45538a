/**
 * Microsoft Azure: Entra ID tokens through a federated identity credential, served to Azure's SDKs as
 * an App Service managed identity endpoint (and a federated token file). The cheap half every command
 * loads (the config loader reads it).
 */
import { checkUrl } from '../../util/urls.js';
import type { CloudSpec, ConfigView, ProfileTypeSpec } from '../spec-types.js';
import type { AzureFederatedProfileConfig } from './schema.js';

/** The assertion value that means "signed by credport's own RSA key". */
export const DEVICE_ASSERTION = 'device';

function check(name: string, p: AzureFederatedProfileConfig, view: ConfigView, problems: string[]): void {
  const key = `profiles.${name}`;
  checkUrl(p.authority, `${key}.authority`, problems);
  if (p.assertion === DEVICE_ASSERTION) {
    // A PKCS#11 [key] may itself be RSA: that is known only once the token is opened.
    if (!view.rsaKey && view.keyBackend !== 'pkcs11')
      problems.push(
        `${key}.assertion: "device" needs an RSA key, and the device key is P-256 (Entra ID refuses ES256 assertions). Either add an [rsa_key] table (credport init --rsa-key) and publish it with credport oidc export, or set assertion to the name of a gcp-wif profile with a service_account (docs/setup-azure.md)`,
      );
    return;
  }
  const source = view.profiles[p.assertion] as { type?: string; service_account?: string } | undefined;
  if (!source) problems.push(`${key}.assertion: no profile named ${p.assertion} (give "device" or a gcp-wif profile's name)`);
  else if (source.type !== 'gcp-wif') problems.push(`${key}.assertion: profile ${p.assertion} is ${source.type}, not gcp-wif`);
  else if (!source.service_account)
    problems.push(
      `${key}.assertion: gcp-wif profile ${p.assertion} has no service_account; Google signs ID tokens for a service account only`,
    );
}

const federated: ProfileTypeSpec<AzureFederatedProfileConfig> = {
  type: 'azure-federated',
  summary:
    'Microsoft Entra ID access tokens through a federated identity credential: an RS256 client assertion signed by the [rsa_key] (iss and sub from [oidc]), or a Google-signed ID token through a gcp-wif profile. Served as an App Service managed identity endpoint. See docs/setup-azure.md.',
  usesOidc: true,
  check,
  // A Google-chained assertion depends on that profile: reloads and ordering follow it.
  sourceProfile: (p) => (p.assertion === DEVICE_ASSERTION ? undefined : p.assertion),
  principal: (p) => `${p.client_id} in tenant ${p.tenant_id}`,
};

export const azureSpec: CloudSpec = {
  name: 'azure',
  title: 'Azure',
  profileTypes: [federated],
};
