/**
 * `credport demo`: the whole flow on this machine with no cloud account. A
 * fresh key, the bundled emulator as issuer host and STS (it verifies the JWT
 * as AWS would), and the real daemon serving the result.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'smol-toml';
import { loadConfig } from '../../config/load.js';
import { startDaemon } from '../../daemon.js';
import { startEntraEmulator } from '../../../emulator/azure/index.js';
import { startEmulator } from '../../../emulator/index.js';
import { defaultSubject } from '../../identity/jwt.js';
import { exportIssuer, publishedJwk } from '../../identity/issuer-documents.js';
import { FileKeySigner } from '../../keys/file/signer.js';
import { createLogger } from '../../logging/logger.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { parseListenFlag } from '../shared.js';

const HELP = `Usage: credport demo [options]

Runs the whole credport flow locally, for AWS, Google Cloud and Azure side by
side: creates a fresh device key (and an RSA key for Azure, which accepts
RS256 only) in a temporary directory, starts the bundled emulators (OIDC
issuer host; AWS STS, Google STS and IAM Credentials, and Entra ID, each
verifying the JWTs as the cloud does), publishes the keys' JWKS there, and
starts the daemon with one profile per cloud. Prints the lines to paste
into another shell; Ctrl-C stops it and removes the temporary directory.

Options:
  --listen HOST:PORT  daemon address (default 127.0.0.1:0, a free port)
  --keep              keep the temporary directory on exit
  -h, --help          show this help`;

const DEMO_ROLE = 'arn:aws:iam::111122223333:role/credport-demo';
const DEMO_PROJECT_NUMBER = '123456789012';
const DEMO_PROJECT = 'credport-demo';
const DEMO_TENANT = '00000000-0000-4000-8000-00000000d3e0';
const DEMO_CLIENT = '11111111-1111-4111-8111-11111111d3e0';
const DEMO_SERVICE_ACCOUNT = `deployer@${DEMO_PROJECT}.iam.gserviceaccount.com`;

export const demoCommand: Command = {
  name: 'demo',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('demo', argv, { listen: { type: 'string' }, keep: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (values.config) throw new CliError('demo makes its own config; --config is not used', EXIT.usage);
    const listen = parseListenFlag(values.listen) ?? { host: '127.0.0.1', port: 0 };
    const dir = mkdtempSync(join(tmpdir(), 'credport-demo-'));
    const issuerDir = join(dir, 'issuer');
    mkdirSync(issuerDir, { mode: 0o755 });
    const logger = createLogger({ level: 'info', pretty: Boolean(process.stderr.isTTY), fd: 2 });
    const emulator = await startEmulator({ issuerDir });
    const cleanup: Array<() => Promise<void> | void> = [() => emulator.close()];
    if (!values.keep) cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const runCleanup = async () => {
      for (const fn of cleanup.reverse()) await fn();
    };
    try {
      const signer = FileKeySigner.create(join(dir, 'device-key.pem'));
      // Azure: Entra accepts RS256 assertions only, so the demo has an RSA key beside the P-256 device key.
      const rsa = FileKeySigner.create(join(dir, 'device-rsa-key.pem'), 'RS256');
      const issuer = emulator.issuerBaseUrl;
      exportIssuer(
        issuerDir,
        issuer,
        [signer, rsa].map((k) => publishedJwk(k.publicJwk(), k.thumbprint)),
      );
      const entra = await startEntraEmulator({ plainHttp: true });
      cleanup.push(() => entra.close());
      entra.addApplication({
        tenantId: DEMO_TENANT,
        clientId: DEMO_CLIENT,
        federatedCredentials: [{ issuer, subject: defaultSubject(signer) }],
      });
      const issuerHost = issuer.replace(/^https?:\/\//, '');
      emulator.createOpenIDConnectProvider({ url: issuer, clientIds: ['sts.amazonaws.com'] });
      emulator.createRole({
        arn: DEMO_ROLE,
        maxSessionDurationSeconds: 3600,
        trust: {
          providerUrl: issuer,
          conditions: { StringEquals: { [`${issuerHost}:sub`]: defaultSubject(signer), [`${issuerHost}:aud`]: 'sts.amazonaws.com' } },
        },
      });
      // Google Cloud: a workload identity pool provider trusting the same issuer, and a service account
      // every identity of the pool may impersonate.
      const wif = emulator.createWorkloadIdentityPoolProvider({
        projectNumber: DEMO_PROJECT_NUMBER,
        poolId: 'devices',
        providerId: 'credport',
        issuerUri: issuer,
      });
      emulator.bindServiceAccount(DEMO_SERVICE_ACCOUNT, wif.principalSet);
      const configFile = join(dir, 'config.toml');
      const writeConfig = (port: number) =>
        writeFileSync(
          configFile,
          `# written by credport demo\n${stringify({
            daemon: {
              listen: `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`,
              token_file: join(dir, 'token'),
              audit_file: join(dir, 'audit.log'),
            },
            key: { backend: 'file', path: join(dir, 'device-key.pem') },
            rsa_key: { backend: 'file', path: join(dir, 'device-rsa-key.pem') },
            oidc: { issuer },
            profiles: {
              default: {
                type: 'aws-oidc',
                role_arn: DEMO_ROLE,
                region: 'us-east-1',
                duration_seconds: 3600,
                sts_endpoint: emulator.stsEndpoint,
              },
              gcp: {
                type: 'gcp-wif',
                audience: wif.resourceName,
                service_account: DEMO_SERVICE_ACCOUNT,
                project_id: DEMO_PROJECT,
                sts_endpoint: emulator.gcpStsEndpoint,
                iamcredentials_endpoint: emulator.iamCredentialsEndpoint,
                metadata_server: true,
              },
              azure: {
                type: 'azure-federated',
                tenant_id: DEMO_TENANT,
                client_id: DEMO_CLIENT,
                // The in-process daemon cannot trust the emulator's test CA: plain http on loopback.
                authority: entra.httpUrl ?? entra.url,
              },
            },
          })}\n`,
          { mode: 0o600 },
        );
      writeConfig(listen.port);
      const config = loadConfig(configFile, io.env);
      const daemon = await startDaemon({ config, logger, signer });
      cleanup.splice(1, 0, () => daemon.close());
      // The port the daemon really got (port 0 picks one), so that the commands printed below find it.
      writeConfig(daemon.port);
      // Wait for the first credentials so the printed lines work at once.
      await Promise.all(['default', 'gcp', 'azure'].map((p) => daemon.scheduler.get(p)?.get()));
      const base = daemon.url;
      io.stdout(
        [
          '',
          'credport demo is running. Press Ctrl-C to stop.',
          '',
          `  emulator (issuer, AWS + Google): ${emulator.url}`,
          `  Entra emulator (Azure):          ${entra.url}`,
          `  daemon:                       ${base}   (curl ${base}/health)`,
          `  device key:                   ${join(dir, 'device-key.pem')} (kid ${signer.thumbprint})`,
          '',
          'Paste into another shell:',
          '',
          `  export AWS_CONTAINER_CREDENTIALS_FULL_URI=${base}/v1/credentials`,
          `  export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=${join(dir, 'token')}`,
          "  # older SDKs and CLIs (e.g. Debian 12's awscli 2.9, botocore 1.29) read only the inline token:",
          `  export AWS_CONTAINER_AUTHORIZATION_TOKEN="$(cat ${join(dir, 'token')})"`,
          '  aws configure export-credentials --format env',
          '',
          'or through the IMDSv2-compatible endpoint:',
          '',
          `  env -u AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_EC2_METADATA_SERVICE_ENDPOINT=${base}/ aws configure export-credentials --format env`,
          '',
          'Google Cloud (google-auth-library, google-auth, gcloud and other Google clients):',
          '',
          `  eval "$(credport env --profile gcp --config ${configFile})"   # GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_CLOUD_PROJECT`,
          `  credport auth --profile gcp --config ${configFile}            # the access token, as JSON`,
          '',
          'or through the metadata-server emulation (tools that know only GCE):',
          '',
          `  eval "$(credport env --profile gcp --metadata --config ${configFile})"   # GCE_METADATA_HOST and friends`,
          '',
          `Azure (ManagedIdentityCredential, DefaultAzureCredential; tokens from the Entra emulator at ${entra.url}):`,
          '',
          `  eval "$(credport env --profile azure --config ${configFile})"   # IDENTITY_ENDPOINT, IDENTITY_HEADER`,
          '  curl -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=https://management.azure.com"',
          '',
          `  credport status --config ${configFile}`,
          `  credport audit --config ${configFile}     # which process got which credentials`,
          '',
          '',
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      return EXIT.ok;
    } finally {
      await runCleanup();
      logger.flush();
    }
  },
};
