/**
 * Azure through credport end to end, against the Entra emulator (https, a throwaway CA): the daemon
 * signs an RS256 client assertion with the [rsa_key], Entra's verifier checks it against the app's
 * federated credential, and unmodified clients get the tokens: @azure/identity's
 * ManagedIdentityCredential and DefaultAzureCredential through the App Service managed identity
 * endpoint, its WorkloadIdentityCredential through the federated token file, and Debian's Python
 * azure-identity through the endpoint.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { mintIdentityToken } from '../daemon/identity/jwt.js';
import { runCli } from './helpers/cli.js';
import { ARM, CLIENT, startAzureStack, TENANT, VAULT } from './helpers/azure-stack.js';
import { assertPresent, needs } from './helpers/tools.js';
import { runChild } from './helpers/clients.js';
import { debianAzureIdentity, exportsOf, nodeClient, printToken, pythonManagedIdentityToken, ROOT } from './helpers/azure-clients.js';

t.test('Azure from the RSA device key: SDKs through the managed identity endpoint and the token file', async (t) => {
  const s = await startAzureStack();
  t.teardown(() => s.close());

  const env = runCli(['env', '--profile', 'azure'], s.env);
  t.equal(env.status, 0, env.stderr);
  const vars = exportsOf(env.stdout);
  t.equal(vars.IDENTITY_ENDPOINT, `${s.baseUrl}/azure/identity/azure`);
  t.match(vars.IDENTITY_HEADER, /^[\w-]{43,}$/);
  t.equal(vars.AZURE_TOKEN_CREDENTIALS, 'ManagedIdentityCredential');
  t.match(env.stdout, /^unset MSI_ENDPOINT MSI_SECRET/m);
  const header = readFileSync(join(s.dir, 'state', 'azure-identity-header.secret'), 'utf8');
  t.equal(header, vars.IDENTITY_HEADER, 'the per-install secret');
  t.equal(statSync(join(s.dir, 'state', 'azure-identity-header.secret')).mode & 0o777, 0o600);

  const clientEnv = { HOME: s.dir, NODE_EXTRA_CA_CERTS: s.caFile, ...vars };
  const expectToken = (got: { token?: string; error?: string }, what: string, scope: string) => {
    t.notOk(got.error, `${what}: ${got.error ?? ''}`);
    const info = got.token ? s.entra.verifyAccessToken(got.token) : undefined;
    t.ok(info, `${what}: a token the Entra emulator issued`);
    t.match(
      info,
      { clientId: CLIENT, tenantId: TENANT, scope, assertionIssuer: s.issuer, expired: false },
      `${what}: for the app, the scope`,
    );
  };

  const mi = await nodeClient(printToken('new identity.ManagedIdentityCredential()', ARM), clientEnv);
  expectToken(mi, 'ManagedIdentityCredential', ARM);
  const vault = await nodeClient(printToken('new identity.ManagedIdentityCredential()', VAULT), clientEnv);
  expectToken(vault, 'ManagedIdentityCredential, second resource', VAULT);
  t.not(mi.token, vault.token, 'one token per resource');
  const dac = await nodeClient(printToken('new identity.DefaultAzureCredential()', ARM), clientEnv);
  expectToken(dac, 'DefaultAzureCredential', ARM);
  t.equal(dac.token, mi.token, 'the pre-refreshed token, not a new request');

  const other = await nodeClient(printToken('new identity.ManagedIdentityCredential()', 'https://storage.azure.com/.default'), clientEnv);
  t.match(other.error ?? '', /storage\.azure\.com/, 'a resource the profile does not hold is refused, naming it');

  // The federated token file, for WorkloadIdentityCredential: 0600, an RS256 assertion Entra accepts.
  const wi = exportsOf(runCli(['env', '--profile', 'azure', '--federated-token'], s.env).stdout);
  t.equal(wi.AZURE_TOKEN_CREDENTIALS, 'WorkloadIdentityCredential');
  t.equal(statSync(wi.AZURE_FEDERATED_TOKEN_FILE ?? '').mode & 0o777, 0o600);
  const assertion = readFileSync(wi.AZURE_FEDERATED_TOKEN_FILE ?? '', 'utf8');
  const claims = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString()) as { exp: number; aud: string };
  t.equal(claims.aud, 'api://AzureADTokenExchange');
  t.ok(claims.exp - Date.now() / 1000 > 50 * 60, 'valid for most of an hour: SDKs re-read it every few minutes');
  const workload = await nodeClient(
    printToken(
      `new identity.WorkloadIdentityCredential({ tenantId: ${JSON.stringify(TENANT)}, clientId: ${JSON.stringify(CLIENT)}, tokenFilePath: ${JSON.stringify(wi.AZURE_FEDERATED_TOKEN_FILE)}, authorityHost: ${JSON.stringify(s.entra.url)}, disableInstanceDiscovery: true })`,
      VAULT,
    ),
    { HOME: s.dir, NODE_EXTRA_CA_CERTS: s.caFile },
  );
  expectToken(workload, 'WorkloadIdentityCredential', VAULT);

  const auth = runCli(['auth', '--profile', 'azure', '--format', 'token'], s.env);
  t.equal(auth.status, 0, auth.stderr);
  t.equal(auth.stdout.trim(), mi.token, "credport auth prints the first scope's token");
});

t.test('the managed identity endpoint refuses what App Service refuses', async (t) => {
  const s = await startAzureStack();
  t.teardown(() => s.close());
  const vars = exportsOf(runCli(['env', '--profile', 'azure'], s.env).stdout);
  const url = (q: string) => `${vars.IDENTITY_ENDPOINT}?${q}`;
  const good = 'api-version=2019-08-01&resource=https://management.azure.com';
  const h = { 'x-identity-header': vars.IDENTITY_HEADER ?? '' };
  const ok = await fetch(url(good), { headers: h });
  t.equal(ok.status, 200);
  const body = (await ok.json()) as Record<string, unknown>;
  t.same(Object.keys(body).sort(), ['access_token', 'client_id', 'expires_on', 'resource', 'token_type']);
  t.match(body.expires_on, /^\d{10}$/, 'epoch seconds as digits');
  t.equal(body.client_id, CLIENT);
  t.equal(body.resource, 'https://management.azure.com');
  t.equal((await fetch(url(good))).status, 401, 'no header');
  t.equal((await fetch(url(good), { headers: { 'x-identity-header': 'x'.repeat(43) } })).status, 401, 'wrong header');
  t.equal(
    (await fetch(url('api-version=2017-09-01&resource=https://management.azure.com'), { headers: h })).status,
    400,
    'other api-version',
  );
  t.equal((await fetch(url('api-version=2019-08-01'), { headers: h })).status, 400, 'no resource');
  t.equal((await fetch(url(good), { headers: { ...h, 'x-forwarded-for': '10.0.0.1' } })).status, 403, 'proxied');
  t.equal((await fetch(`${s.baseUrl}/azure/identity/nope?${good}`, { headers: h })).status, 404, 'unknown profile');
});

t.test('Debian python3-azure ManagedIdentityCredential through the endpoint', needs(debianAzureIdentity), async (t) => {
  if (!assertPresent(t, debianAzureIdentity)) return;
  const s = await startAzureStack();
  t.teardown(() => s.close());
  const vars = exportsOf(runCli(['env', '--profile', 'azure'], s.env).stdout);
  const got = await pythonManagedIdentityToken(vars, s.dir, ARM);
  t.equal(got.code, 0, got.stderr.slice(-2000));
  t.match(got.token ? s.entra.verifyAccessToken(got.token) : undefined, { clientId: CLIENT, scope: ARM, expired: false });
  t.ok((got.expiresOn ?? 0) > Date.now() / 1000 + 600, 'expires_on read as epoch seconds');
});

t.test('Entra refuses what it refuses: ES256, an unknown subject', async (t) => {
  const s = await startAzureStack();
  t.teardown(() => s.close());
  const post = async (assertion: string) => {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: CLIENT,
      scope: ARM,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
    // In a child that trusts the test CA; asynchronously, since the issuer the emulator reads runs here.
    const r = await runChild(
      process.execPath,
      [
        '-e',
        `fetch(process.argv[1], { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: process.argv[2] }).then(async (r) => console.log(r.status, await r.text()))`,
        `${s.entra.url}/${TENANT}/oauth2/v2.0/token`,
        form.toString(),
      ],
      { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: s.caFile },
      ROOT,
    );
    const [status, ...rest] = r.stdout.trim().split(' ');
    return {
      status: Number(status),
      body: JSON.parse(rest.join(' ')) as { error: string; error_description: string; error_codes: number[] },
    };
  };
  const claims = {
    issuer: s.issuer,
    subject: `device:${s.device.thumbprint}`,
    audience: 'api://AzureADTokenExchange',
    lifetimeSeconds: 300,
  };
  const es = await post((await mintIdentityToken(s.device, claims)).token);
  t.equal(es.status, 401);
  t.same(es.body.error_codes, [5002738]);
  t.match(es.body.error_description, /^AADSTS5002738: Invalid JWT token\. 'ES256' is not a supported signature algorithm/);
  const stranger = await post((await mintIdentityToken(s.rsa, { ...claims, subject: 'device:someone-else' })).token);
  t.same(stranger.body.error_codes, [700213]);
  const wrongAud = await post((await mintIdentityToken(s.rsa, { ...claims, audience: 'api://other' })).token);
  t.same(wrongAud.body.error_codes, [700212]);
  const expired = await post((await mintIdentityToken(s.rsa, { ...claims, now: () => Date.now() - 3600_000 })).token);
  t.same(expired.body.error_codes, [700024]);
  const right = await post((await mintIdentityToken(s.rsa, claims)).token);
  t.equal(right.status, 200, 'the same claims signed RS256 by the published RSA key pass');
});
