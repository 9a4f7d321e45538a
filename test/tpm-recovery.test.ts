/**
 * The TPM's resource manager (tpm2-abrmd) restarted under a live daemon, as a package upgrade or a
 * crash does: while it is down the last good credentials keep being served, and once it is back the
 * daemon signs again with the same TPM key, without credport being restarted.
 *
 * A tpm2-abrmd restart leaves tpm2-pkcs11's connection dead: every call on the old sessions fails with
 * CKR_GENERAL_ERROR, which is neither SESSION_INVALID nor TOKEN_NOT_PRESENT, so only a signer that
 * re-opens after any non-PIN error recovers.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { fromHttp } from '@aws-sdk/credential-providers';
import { stringify } from 'smol-toml';
import { loadConfig } from '../daemon/config/load.js';
import { startDaemon } from '../daemon/daemon.js';
import { exportIssuer, publishedJwk } from '../daemon/identity/issuer-documents.js';
import { openSigner } from '../daemon/keys/open-signer.js';
import { silentLogger } from '../daemon/logging/logger.js';
import { startEmulator } from '../emulator/index.js';
import { enclaveAddon } from './helpers/softhsm.js';
import { softTpm, startSoftTpm } from './helpers/tpm.js';
import { assertPresent, needs } from './helpers/tools.js';

const ROLE = 'arn:aws:iam::111122223333:role/dev';

t.test('tpm2-abrmd restarted under a live daemon', needs(softTpm, enclaveAddon), async (t) => {
  if (!assertPresent(t, softTpm, enclaveAddon)) return;
  const tpm = await startSoftTpm();
  t.teardown(() => tpm.close());
  // This key comes from tpm2_ptool, the other way a user gets one (docs/key-backends.md).
  tpm.addKey('device');
  const dir = join(tpm.dir, 'home');
  mkdirSync(dir);
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${tpm.pin}\n`, { mode: 0o600 });
  const issuerDir = join(dir, 'issuer');
  mkdirSync(issuerDir);
  const emulator = await startEmulator({ issuerDir });
  t.teardown(() => emulator.close());

  const configFile = join(dir, 'config.toml');
  writeFileSync(
    configFile,
    stringify({
      daemon: {
        listen: '127.0.0.1:0',
        token_file: join(dir, 'token'),
        lock_file: join(dir, 'daemon.pid'),
        audit_file: join(dir, 'audit.log'),
      },
      key: { backend: 'pkcs11', module: tpm.module, token_label: tpm.tokenLabel, key_label: 'device', pin_file: pinFile },
      oidc: { issuer: emulator.issuerBaseUrl },
      profiles: {
        default: { type: 'aws-oidc', role_arn: ROLE, region: 'us-east-1', duration_seconds: 3600, sts_endpoint: emulator.stsEndpoint },
      },
    }),
  );
  const config = loadConfig(configFile, { ...process.env, ...tpm.env });
  const signer = await openSigner(config.key);
  exportIssuer(issuerDir, emulator.issuerBaseUrl, publishedJwk(signer.publicJwk(), signer.thumbprint));
  const host = emulator.issuerBaseUrl.replace(/^https?:\/\//, '');
  emulator.createOpenIDConnectProvider({ url: emulator.issuerBaseUrl, clientIds: ['sts.amazonaws.com'] });
  emulator.createRole({
    arn: ROLE,
    trust: { providerUrl: emulator.issuerBaseUrl, conditions: { StringEquals: { [`${host}:sub`]: `device:${signer.thumbprint}` } } },
  });

  const daemon = await startDaemon({ config, signer, logger: silentLogger(), tuning: { maxAttempts: 1 } });
  t.teardown(() => daemon.close());
  const token = readFileSync(config.daemon.tokenFile, 'utf8');
  const get = () =>
    fromHttp({ awsContainerCredentialsFullUri: `${daemon.url}/v1/credentials/default`, awsContainerAuthorizationToken: token })();
  const refresher = daemon.scheduler.get('default');
  if (!refresher) throw new Error('no refresher for the default profile');

  const before = await get();
  t.equal(emulator.issued(before.accessKeyId)?.roleArn, ROLE, 'credentials signed in the TPM before the restart');

  const startAgain = await tpm.stopResourceManager();
  const failed = await refresher.refreshNow().then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  t.ok(failed, 'with the resource manager down, a refresh fails (the control: the TPM really is unreachable)');
  const during = await get();
  t.equal(during.accessKeyId, before.accessKeyId, 'the last good credentials are served while it is down');

  await startAgain();
  // The signer re-opens at a limited rate: try a bounded number of refreshes, a second apart.
  let after: unknown;
  let lastError: unknown;
  for (let i = 0; i < 30 && after === undefined; i++) {
    try {
      after = await refresher.refreshNow();
    } catch (err) {
      lastError = err;
      await sleep(1000);
    }
  }
  t.ok(after, `the daemon signs again without a restart${after ? '' : ` (last error: ${(lastError as Error)?.message})`}`);
  const served = await get();
  t.not(served.accessKeyId, before.accessKeyId, 'new credentials are served');
  t.equal(emulator.issued(served.accessKeyId)?.roleArn, ROLE, 'issued for a token the TPM signed after the restart');
  t.equal(daemon.signer.thumbprint, signer.thumbprint, 'with the same TPM key');
});
