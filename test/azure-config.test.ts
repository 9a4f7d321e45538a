/** azure-federated profiles in the config: what the loader accepts and the one-line errors it gives. */
import t from 'tap';
import { resolveConfig } from '../daemon/config/load.js';

const base = (azure: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  key: { backend: 'file', path: '/k/device-key.pem' },
  oidc: { issuer: 'https://issuer.example' },
  profiles: {
    azure: {
      type: 'azure-federated',
      tenant_id: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      client_id: '11111111-2222-3333-4444-555555555555',
      ...azure,
    },
    gcp: {
      type: 'gcp-wif',
      audience: '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/pool/providers/prov',
      service_account: 'deployer@my-project.iam.gserviceaccount.com',
    },
    gcpnosa: {
      type: 'gcp-wif',
      audience: '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/pool/providers/prov',
    },
  },
  ...extra,
});
const env = { HOME: '/h', XDG_STATE_HOME: '/s' };
const load = (data: unknown) => resolveConfig('/c/config.toml', data, env);

t.test('defaults and a valid chain', async (t) => {
  const c = load(base({}, { rsa_key: {} }));
  t.match(c.profiles.get('azure'), {
    assertion: 'device',
    scopes: ['https://management.azure.com/.default'],
    audience: 'api://AzureADTokenExchange',
    authority: 'https://login.microsoftonline.com',
    federated_token_file: false,
  });
  t.equal(c.defaults.azure, 'azure', 'the only Azure profile is its default');
  t.doesNotThrow(() => load(base({ assertion: 'gcp' })), 'chained through a gcp-wif profile with a service account');
});

t.test('a P-256 device key alone cannot sign for Entra: the error names both ways out', async (t) => {
  t.throws(() => load(base({})), /profiles\.azure\.assertion: "device" needs an RSA key.*\[rsa_key\].*gcp-wif profile/);
});

t.test('assertion must name a gcp-wif profile with a service account', async (t) => {
  t.throws(() => load(base({ assertion: 'gcpnosa' })), /gcp-wif profile gcpnosa has no service_account/);
  t.throws(() => load(base({ assertion: 'nowhere' })), /profiles\.azure\.assertion: no profile named nowhere/);
  t.throws(
    () => load(base({ scopes: ['https://management.azure.com'] }, { rsa_key: {} })),
    /profiles\.azure\.scopes\.0: expected a resource scope ending in \/\.default/,
  );
  t.throws(() => load(base({ tenant_id: 'not a tenant' }, { rsa_key: {} })), /profiles\.azure\.tenant_id: expected a tenant id/);
  t.throws(() => load(base({ authority: 'http://login.example.com' }, { rsa_key: {} })), /profiles\.azure\.authority/);
});
