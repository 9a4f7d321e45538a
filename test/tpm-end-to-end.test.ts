/**
 * The product with its key in a TPM 2.0 (swtpm behind tpm2-abrmd, through tpm2-pkcs11), from
 * `credport init --backend pkcs11 --module .../libtpm2_pkcs11.so` to the AWS SDK for JavaScript
 * receiving credentials: OIDC tokens signed in the TPM, and a Roles Anywhere certificate whose CSR
 * was signed in the TPM, each checked by the emulator as AWS checks it.
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fromHttp } from '@aws-sdk/credential-providers';
import { stringify } from 'smol-toml';
import { loadConfig } from '../daemon/config/load.js';
import { startDaemon } from '../daemon/daemon.js';
import { ecPublicJwk, jwkThumbprint } from '../daemon/keys/jwk.js';
import { silentLogger } from '../daemon/logging/logger.js';
import { startEmulator } from '../emulator/index.js';
import { runCliAsync } from './helpers/cli.js';
import { enclaveAddon, pkcs11Tool } from './helpers/softhsm.js';
import { softTpm, startSoftTpm } from './helpers/tpm.js';
import { assertPresent, needs, tool } from './helpers/tools.js';

const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555`;
const RA_PROFILE = `arn:aws:rolesanywhere:${REGION}:111122223333:profile/66666666-7777-8888-9999-000000000000`;
const OIDC_ROLE = 'arn:aws:iam::111122223333:role/dev';
const EDGE_ROLE = 'arn:aws:iam::111122223333:role/edge';

const openssl = tool('openssl', () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0, 'apt-get install openssl');

t.test(
  'credport init on a TPM, then OIDC and Roles Anywhere to the JS SDK',
  needs(softTpm, enclaveAddon, pkcs11Tool, openssl),
  async (t) => {
    if (!assertPresent(t, softTpm, enclaveAddon, pkcs11Tool, openssl)) return;
    const tpm = await startSoftTpm();
    t.teardown(() => tpm.close());
    const home = join(tpm.dir, 'home');
    mkdirSync(home);
    const pinFile = join(home, 'pin');
    writeFileSync(pinFile, `${tpm.pin}\n`, { mode: 0o600 });
    const issuerDir = join(home, 'issuer');
    mkdirSync(issuerDir);
    const emulator = await startEmulator({ issuerDir });
    t.teardown(() => emulator.close());
    const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_STATE_HOME: join(home, 'state'), ...tpm.env };

    // The token exists (tpm2_ptool addtoken); the key does not: credport init makes it in the TPM.
    const init = await runCliAsync(
      [
        'init',
        '--backend',
        'pkcs11',
        '--module',
        tpm.module,
        '--token-label',
        tpm.tokenLabel,
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
    t.notMatch(init.stdout + init.stderr, new RegExp(`\\b${tpm.pin}\\b`), 'the PIN is never printed');

    // The key is the TPM's: tpm2-pkcs11 lists it as generated on the token and never extractable, and its
    // public half, read back through another PKCS#11 client, is the key credport names.
    const p11 = (args: string[]) => {
      const r = spawnSync('pkcs11-tool', ['--module', tpm.module, '--token-label', tpm.tokenLabel, '--login', '--pin', tpm.pin, ...args], {
        env: { ...process.env, ...tpm.env },
        timeout: 60_000,
      });
      if (r.status !== 0) throw new Error(`pkcs11-tool ${args.join(' ')}: ${r.stderr.toString()}`);
      return r.stdout;
    };
    const objects = p11(['--list-objects', '--type', 'privkey']).toString('utf8');
    t.match(objects, /label:\s+device/);
    t.match(objects, /never extractable/);
    t.match(objects, /local/, 'generated in the TPM, not imported');
    const tpmPublic = createPublicKey({
      key: p11(['--read-object', '--type', 'pubkey', '--label', 'device']),
      format: 'der',
      type: 'spki',
    });
    const tpmThumbprint = jwkThumbprint(ecPublicJwk(tpmPublic));

    const show = await runCliAsync(['key', 'show', '--json'], env);
    t.equal(show.status, 0, show.stderr);
    const key = JSON.parse(show.stdout) as { thumbprint: string; backend: string };
    t.equal(key.backend, 'pkcs11');
    t.equal(key.thumbprint, tpmThumbprint, "credport's key is the TPM's key");
    t.match(init.stdout, new RegExp(`kid:\\s+${tpmThumbprint}`));
    const exp = await runCliAsync(['oidc', 'export', issuerDir], env);
    t.equal(exp.status, 0, exp.stderr);

    // The CSR is signed in the TPM; openssl checks its signature and that it names the TPM's key.
    const caDir = join(home, 'ca');
    t.equal((await runCliAsync(['ca', 'init', '--dir', caDir], env)).status, 0);
    const csr = join(home, 'device.csr');
    const csrRun = await runCliAsync(['cert', 'csr', '--subject', 'CN=tpm-device', '--out', csr], env);
    t.equal(csrRun.status, 0, csrRun.stderr);
    const verified = spawnSync('openssl', ['req', '-in', csr, '-verify', '-noout', '-subject'], { encoding: 'utf8' });
    t.equal(verified.status, 0, `openssl verifies the CSR: ${verified.stderr}`);
    t.match(verified.stdout, /CN\s*=\s*tpm-device/);
    const csrKey = spawnSync('openssl', ['req', '-in', csr, '-pubkey', '-noout'], { encoding: 'utf8' }).stdout;
    t.equal(jwkThumbprint(ecPublicJwk(createPublicKey(csrKey))), tpmThumbprint, 'the CSR names the TPM key');
    const cert = join(home, 'device.pem');
    t.equal((await runCliAsync(['ca', 'issue', '--dir', caDir, '--csr', csr, '--out', cert], env)).status, 0);

    const issuerHost = emulator.issuerBaseUrl.replace(/^http:\/\//, '');
    emulator.createOpenIDConnectProvider({ url: emulator.issuerBaseUrl, clientIds: ['sts.amazonaws.com'] });
    emulator.createRole({
      arn: OIDC_ROLE,
      trust: { providerUrl: emulator.issuerBaseUrl, conditions: { StringEquals: { [`${issuerHost}:sub`]: `device:${tpmThumbprint}` } } },
    });
    emulator.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, 'ca.pem'), 'utf8') });
    emulator.createRolesAnywhereProfile({ arn: RA_PROFILE, roleArns: [EDGE_ROLE] });
    emulator.createRole({ arn: EDGE_ROLE, trust: { rolesAnywhere: true } });

    // Point the generated config at the emulator and add the Roles Anywhere profile.
    const configFile = join(home, 'cfg', 'credport', 'config.toml');
    const text = readFileSync(configFile, 'utf8');
    t.match(text, new RegExp(`module = "${tpm.module}"`), 'init wrote the tpm2-pkcs11 module into the config');
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
    t.equal(daemon.signer.thumbprint, tpmThumbprint);
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
      t.equal(issued?.roleArn, role, `${profile}: credentials for ${role}, signed in the TPM`);
      t.equal(c.secretAccessKey, issued?.secretAccessKey);
      if (profile === 'edge') t.ok(issued?.certificateSerial, 'issued through Roles Anywhere, for the certificate');
    }
  },
);
