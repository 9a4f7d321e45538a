/**
 * The chained assertion, for devices whose key is P-256 only: the device JWT buys a Google federated
 * token (gcp-wif), which buys an RS256 ID token of the service account from IAM Credentials
 * generateIdToken (aud api://AzureADTokenExchange), which Entra accepts through a federated credential
 * naming Google's issuer and the service account's unique id. No [rsa_key] is used by this profile.
 */
import t from 'tap';
import { runCli, runCliAsync } from './helpers/cli.js';
import { ARM, startAzureStack, TENANT } from './helpers/azure-stack.js';
import { debianAzureIdentity, exportsOf, nodeClient, printToken, pythonManagedIdentityToken } from './helpers/azure-clients.js';
import { assertPresent } from './helpers/tools.js';

const SA = 'deployer@my-project.iam.gserviceaccount.com';
const CHAINED = '99999999-8888-7777-6666-555555555555';

t.test('Entra token through the Google chain, end to end', async (t) => {
  let uniqueId = '';
  let googleIssuer = '';
  const s = await startAzureStack({
    before: ({ emulator, entra, issuer }) => {
      const provider = emulator.createWorkloadIdentityPoolProvider({
        projectNumber: '123456789',
        poolId: 'devices',
        providerId: 'credport',
        issuerUri: issuer,
      });
      emulator.bindServiceAccount(SA, provider.principalSet);
      uniqueId = emulator.serviceAccountUniqueId(SA);
      googleIssuer = emulator.googleIdTokenIssuer;
      entra.addApplication({ tenantId: TENANT, clientId: CHAINED, federatedCredentials: [{ issuer: googleIssuer, subject: uniqueId }] });
    },
    profiles: ({ emulator, entra }) => ({
      google: {
        type: 'gcp-wif',
        audience: '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/devices/providers/credport',
        service_account: SA,
        sts_endpoint: emulator.gcpStsEndpoint,
        iamcredentials_endpoint: emulator.iamCredentialsEndpoint,
      },
      chained: {
        type: 'azure-federated',
        tenant_id: TENANT,
        client_id: CHAINED,
        assertion: 'google',
        scopes: [ARM],
        authority: entra.url,
      },
    }),
  });
  t.teardown(() => s.close());
  const auth = runCli(['auth', '--profile', 'chained', '--format', 'token'], s.env);
  t.equal(auth.status, 0, auth.stderr);
  const info = s.entra.verifyAccessToken(auth.stdout.trim());
  t.match(info, { clientId: CHAINED, scope: ARM, assertionIssuer: googleIssuer, assertionSubject: uniqueId, expired: false });
  t.equal(s.emulator.stats.iamCredentialsSuccesses >= 2, true, "generateIdToken (and the gcp profile's own generateAccessToken) succeeded");
  const status = JSON.parse(runCli(['status', '--json'], s.env).stdout) as { profiles: Record<string, { source: string }> };
  t.match(status.profiles.chained?.source, /Google ID token of deployer@my-project\.iam\.gserviceaccount\.com/);

  // The same chained profile to unmodified clients, through the managed identity endpoint.
  const vars = exportsOf(runCli(['env', '--profile', 'chained'], s.env).stdout);
  t.ok(vars.IDENTITY_ENDPOINT, 'credport env names the endpoint');
  const expected = { clientId: CHAINED, scope: ARM, assertionIssuer: googleIssuer, assertionSubject: uniqueId, expired: false };
  const node = await nodeClient(printToken('new identity.ManagedIdentityCredential()', ARM), { HOME: s.dir, ...vars });
  t.notOk(node.error, `@azure/identity: ${node.error ?? ''}`);
  t.match(node.token ? s.entra.verifyAccessToken(node.token) : undefined, expected, '@azure/identity ManagedIdentityCredential');
  if (assertPresent(t, debianAzureIdentity)) {
    const py = await pythonManagedIdentityToken(vars, s.dir, ARM);
    t.equal(py.code, 0, py.stderr.slice(-2000));
    t.match(py.token ? s.entra.verifyAccessToken(py.token) : undefined, expected, "Debian's Python azure-identity");
  }
});

t.test('generateIdToken refuses an identity without the binding', async (t) => {
  const s = await startAzureStack({
    before: ({ emulator, entra }) => {
      emulator.createWorkloadIdentityPoolProvider({
        projectNumber: '123456789',
        poolId: 'devices',
        providerId: 'credport',
        issuerUri: emulator.issuerBaseUrl,
      });
      // No binding on the service account.
      entra.addApplication({
        tenantId: TENANT,
        clientId: CHAINED,
        federatedCredentials: [{ issuer: 'https://accounts.google.com', subject: '1' }],
      });
    },
    profiles: ({ emulator, entra }) => ({
      google: {
        type: 'gcp-wif',
        audience: '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/devices/providers/credport',
        service_account: SA,
        sts_endpoint: emulator.gcpStsEndpoint,
        iamcredentials_endpoint: emulator.iamCredentialsEndpoint,
      },
      chained: { type: 'azure-federated', tenant_id: TENANT, client_id: CHAINED, assertion: 'google', scopes: [ARM], authority: entra.url },
    }),
    waitForOk: false,
  });
  t.teardown(() => s.close());
  // Asynchronously: the emulators answering it run in this process.
  const auth = await runCliAsync(['auth', '--profile', 'chained', '--direct'], s.env);
  t.not(auth.status, 0);
  t.match(auth.stderr, /PERMISSION_DENIED.*getOpenIdToken/, "the missing binding, in Google's words");
  t.same(s.entra.stats.refusals, [], 'no unsigned or foreign assertion was sent to Entra');
});
