/**
 * The [rsa_key] on a real PKCS#11 token (SoftHSM2): an RSA-2048 key made with pkcs11-tool signs the
 * client assertion on the token (CKM_SHA256_RSA_PKCS), and the daemon gets Entra-emulator tokens with
 * it end to end. Needs the native addon's RSA support (NativeKeyInfo.keyType 'rsa').
 */
import t from 'tap';
import { calculateJwkThumbprint, importJWK, jwtVerify } from 'jose';
import { mintIdentityToken } from '../daemon/identity/jwt.js';
import { openRsaSigner } from '../daemon/keys/open-signer.js';
import { ARM, CLIENT, startAzureStack } from './helpers/azure-stack.js';
import { createSoftHsm, enclaveAddon, softhsm2, pkcs11Tool } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const PIN_ENV = 'CREDPORT_TEST_RSA_PIN';

t.test('an RSA key on SoftHSM2 signs the Entra client assertion', needs(softhsm2, pkcs11Tool, enclaveAddon), async (t) => {
  if (!assertPresent(t, softhsm2, pkcs11Tool, enclaveAddon)) return;
  const hsm = createSoftHsm();
  t.teardown(() => hsm.cleanup());
  hsm.pkcs11Tool(['--keypairgen', '--key-type', 'rsa:2048', '--label', 'device-rsa', '--id', '02']);
  process.env[PIN_ENV] = hsm.pin;
  const table = { backend: 'pkcs11', module: hsm.module, token_label: hsm.tokenLabel, pin_env: PIN_ENV };
  const signer = await openRsaSigner({
    backend: 'pkcs11',
    module: hsm.module,
    tokenLabel: hsm.tokenLabel,
    keyLabel: 'device-rsa',
    pin: { env: PIN_ENV },
  });
  t.equal(signer.algorithm, 'RS256');
  const jwk = signer.publicJwk();
  t.equal(jwk.kty, 'RSA');
  t.equal(signer.thumbprint, await calculateJwkThumbprint(jwk));
  const { token } = await mintIdentityToken(signer, {
    issuer: 'https://i.example',
    subject: 's',
    audience: 'api://AzureADTokenExchange',
    lifetimeSeconds: 300,
  });
  await jwtVerify(token, await importJWK({ ...jwk }, 'RS256'), { algorithms: ['RS256'] });
  t.pass('signed on the token, verified by jose');
  await signer.close();

  const s = await startAzureStack({
    rsaKey: { table, jwk, thumbprint: signer.thumbprint },
    env: { SOFTHSM2_CONF: hsm.conf, [PIN_ENV]: hsm.pin },
  });
  t.teardown(() => s.close());
  const vars = Object.fromEntries(
    [
      ...(await import('./helpers/cli.js')).runCli(['env', '--profile', 'azure'], s.env).stdout.matchAll(/^export ([A-Z_]+)='([^']*)'$/gm),
    ].map((m) => [m[1], m[2]]),
  );
  const r = await fetch(`${vars.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com`, {
    headers: { 'x-identity-header': vars.IDENTITY_HEADER ?? '' },
  });
  t.equal(r.status, 200);
  const body = (await r.json()) as { access_token: string };
  t.match(s.entra.verifyAccessToken(body.access_token), { clientId: CLIENT, scope: ARM, expired: false });
});
