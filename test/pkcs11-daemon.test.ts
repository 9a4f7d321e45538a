/**
 * The product with its key on a real PKCS#11 token (SoftHSM2): `credport init
 * --backend pkcs11`, `key show`, `oidc export`, then the daemon serving the
 * OIDC flow to the real SDK with every JWT signed on the token, and a Roles
 * Anywhere profile whose certificate came from `credport cert csr` (signed on
 * the token) and `credport ca issue`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fromHttp } from '@aws-sdk/credential-providers';
import { stringify } from 'smol-toml';
import { loadConfig } from '../daemon/config/load.js';
import { startDaemon } from '../daemon/daemon.js';
import { startEmulator } from '../emulator/index.js';
import { silentLogger } from '../daemon/logging/logger.js';
import { runCliAsync } from './helpers/cli.js';
import { createSoftHsm, enclaveAddon, softhsm2 } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555`;
const RA_PROFILE = `arn:aws:rolesanywhere:${REGION}:111122223333:profile/66666666-7777-8888-9999-000000000000`;
const OIDC_ROLE = 'arn:aws:iam::111122223333:role/dev';
const EDGE_ROLE = 'arn:aws:iam::111122223333:role/edge';

t.test('OIDC and Roles Anywhere with the device key on SoftHSM2', needs(softhsm2, enclaveAddon), async (t) => {
  if (!assertPresent(t, softhsm2, enclaveAddon)) return;
  const hsm = createSoftHsm();
  t.teardown(() => hsm.cleanup());
  const home = join(hsm.dir, 'home');
  mkdirSync(home);
  const pinFile = join(home, 'pin');
  writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
  const issuerDir = join(home, 'issuer');
  mkdirSync(issuerDir);
  const emulator = await startEmulator({ issuerDir });
  t.teardown(() => emulator.close());
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_STATE_HOME: join(home, 'state'), SOFTHSM2_CONF: hsm.conf };

  const init = await runCliAsync(
    [
      'init',
      '--backend',
      'pkcs11',
      '--module',
      hsm.module,
      '--token-label',
      hsm.tokenLabel,
      '--key-label',
      'device',
      '--pin-file',
      pinFile,
      '--issuer',
      emulator.issuerBaseUrl,
      '--role-arn',
      OIDC_ROLE,
      '--listen',
      '127.0.0.1:0',
    ],
    env,
  );
  t.equal(init.status, 0, init.stderr);
  t.match(init.stdout, /key:\s+token "credport".*key "device" \(created, pkcs11 backend\)/);
  t.notMatch(init.stdout + init.stderr, new RegExp(`\\b${hsm.pin}\\b`), 'the PIN is never printed');
  // The key really is on the token, and not extractable.
  const objects = hsm.pkcs11Tool(['--list-objects', '--type', 'privkey']);
  t.match(objects, /label:\s+device/);
  t.match(objects, /never extractable/);

  const show = await runCliAsync(['key', 'show', '--json'], env);
  t.equal(show.status, 0, show.stderr);
  const key = JSON.parse(show.stdout) as { thumbprint: string; backend: string };
  t.equal(key.backend, 'pkcs11');
  const exp = await runCliAsync(['oidc', 'export', issuerDir], env);
  t.equal(exp.status, 0, exp.stderr);

  // Certificate for the same token key, via the CLI: CSR signed on the token, issued by a credport CA.
  const caDir = join(home, 'ca');
  t.equal((await runCliAsync(['ca', 'init', '--dir', caDir], env)).status, 0);
  const csr = join(home, 'device.csr');
  t.equal((await runCliAsync(['cert', 'csr', '--subject', 'CN=hsm-device', '--out', csr], env)).status, 0);
  const cert = join(home, 'device.pem');
  t.equal((await runCliAsync(['ca', 'issue', '--dir', caDir, '--csr', csr, '--out', cert], env)).status, 0);

  const issuerHost = emulator.issuerBaseUrl.replace(/^http:\/\//, '');
  emulator.createOpenIDConnectProvider({ url: emulator.issuerBaseUrl, clientIds: ['sts.amazonaws.com'] });
  emulator.createRole({
    arn: OIDC_ROLE,
    trust: { providerUrl: emulator.issuerBaseUrl, conditions: { StringEquals: { [`${issuerHost}:sub`]: `device:${key.thumbprint}` } } },
  });
  emulator.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, 'ca.pem'), 'utf8') });
  emulator.createRolesAnywhereProfile({ arn: RA_PROFILE, roleArns: [EDGE_ROLE] });
  emulator.createRole({ arn: EDGE_ROLE, trust: { rolesAnywhere: true } });

  // Point the generated config at the emulator and add the Roles Anywhere profile.
  const configFile = join(home, 'cfg', 'credport', 'config.toml');
  const text = readFileSync(configFile, 'utf8');
  writeFileSync(
    configFile,
    `${text}\n${stringify({ profiles: { edge: { type: 'aws-rolesanywhere', certificate: cert, trust_anchor_arn: TA, profile_arn: RA_PROFILE, role_arn: EDGE_ROLE, endpoint: emulator.rolesAnywhereEndpoint } } })}\n`.replace(
      'duration_seconds = 3600',
      `duration_seconds = 3600\nsts_endpoint = "${emulator.stsEndpoint}"`,
    ),
  );
  const config = loadConfig(configFile, env);
  const daemon = await startDaemon({ config, logger: silentLogger(), tuning: { maxAttempts: 1 } });
  t.teardown(() => daemon.close());
  t.equal(daemon.signer.describe().backend, 'pkcs11');
  const token = readFileSync(config.daemon.tokenFile, 'utf8');
  for (const [profile, role] of [
    ['default', OIDC_ROLE],
    ['edge', EDGE_ROLE],
  ] as const) {
    const c = await fromHttp({
      awsContainerCredentialsFullUri: `${daemon.url}/v1/credentials/${profile}`,
      awsContainerAuthorizationToken: token,
    })();
    const issued = emulator.issued(c.accessKeyId);
    t.equal(issued?.roleArn, role, `${profile}: credentials for ${role}, signed on the token`);
    t.equal(c.secretAccessKey, issued?.secretAccessKey);
  }
  t.equal(
    emulator.issued(
      (await fromHttp({ awsContainerCredentialsFullUri: `${daemon.url}/v1/credentials/edge`, awsContainerAuthorizationToken: token })())
        .accessKeyId,
    )?.certificateSerial !== undefined,
    true,
  );
  const health = (await (await fetch(`${daemon.url}/health`)).json()) as { status: string; key: { backend: string; location: string } };
  t.equal(health.status, 'ok');
  t.match(health.key.location, /token "credport"/);
});
