/**
 * A daemon with Azure profiles against the Entra emulator, run as `credport serve` in its own process:
 * the emulator speaks https with a throwaway CA, which Node trusts only through NODE_EXTRA_CA_CERTS
 * read at process start. The device key (P-256) and the RSA key are files; the issuer documents hold
 * both and are served by the AWS/Google emulator, where Entra's verifier discovers them.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'smol-toml';
import { type EntraEmulator, startEntraEmulator } from '../../emulator/azure/index.js';
import { type Emulator, startEmulator } from '../../emulator/index.js';
import { exportIssuer, publishedJwk } from '../../daemon/identity/issuer-documents.js';
import { defaultSubject } from '../../daemon/identity/jwt.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import type { PublicJwk } from '../../daemon/keys/signer.js';
import { freePort, runCli, spawnCli, waitFor } from './cli.js';

export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const CLIENT = '11111111-2222-3333-4444-555555555555';
export const ARM = 'https://management.azure.com/.default';
export const VAULT = 'https://vault.azure.net/.default';

export interface AzureStack {
  dir: string;
  configFile: string;
  caFile: string;
  emulator: Emulator;
  entra: EntraEmulator;
  device: FileKeySigner;
  rsa: FileKeySigner;
  issuer: string;
  baseUrl: string;
  /** Environment for the CLI and for client processes (HOME, the CA). */
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export interface AzureStackOptions {
  /** Extra profiles (TOML tables); `{emulator}` placeholders are not expanded here: pass final values. */
  profiles?: (s: { emulator: Emulator; entra: EntraEmulator; issuer: string }) => Record<string, Record<string, unknown>>;
  /** Register the device's federated credential on the app (default true). */
  trustDevice?: boolean;
  /** Set up the Google side before the daemon starts (pools, bindings, more Entra apps). */
  before?: (s: { emulator: Emulator; entra: EntraEmulator; issuer: string }) => void;
  /** The [rsa_key] table and its public key, instead of an RSA key file (a PKCS#11 token's key). */
  rsaKey?: { table: Record<string, unknown>; jwk: PublicJwk; thumbprint: string };
  /** More environment for the daemon and the CLI (SOFTHSM2_CONF, a PIN variable). */
  env?: NodeJS.ProcessEnv;
  /** Wait for every profile to hold credentials (default true). */
  waitForOk?: boolean;
}

export async function startAzureStack(o: AzureStackOptions = {}): Promise<AzureStack> {
  const dir = mkdtempSync(join(tmpdir(), 'credport-azure-'));
  const issuerDir = join(dir, 'issuer');
  mkdirSync(issuerDir);
  const emulator = await startEmulator({ issuerDir });
  const entra = await startEntraEmulator();
  const device = FileKeySigner.create(join(dir, 'device-key.pem'));
  const rsa = FileKeySigner.create(join(dir, 'device-rsa-key.pem'), 'RS256');
  const issuer = emulator.issuerBaseUrl;
  const rsaPublic = o.rsaKey ?? { jwk: rsa.publicJwk(), thumbprint: rsa.thumbprint };
  exportIssuer(issuerDir, issuer, [publishedJwk(device.publicJwk(), device.thumbprint), publishedJwk(rsaPublic.jwk, rsaPublic.thumbprint)]);
  if (o.trustDevice !== false)
    entra.addApplication({
      tenantId: TENANT,
      clientId: CLIENT,
      federatedCredentials: [{ issuer, subject: defaultSubject(device) }],
    });
  o.before?.({ emulator, entra, issuer });
  const caFile = join(dir, 'entra-ca.pem');
  writeFileSync(caFile, entra.caPem);
  const port = await freePort();
  const configFile = join(dir, 'config.toml');
  writeFileSync(
    configFile,
    stringify({
      daemon: {
        listen: `127.0.0.1:${port}`,
        token_file: join(dir, 'state', 'token'),
        lock_file: join(dir, 'daemon.pid'),
        audit_file: join(dir, 'audit.log'),
      },
      key: { backend: 'file', path: join(dir, 'device-key.pem') },
      rsa_key: o.rsaKey?.table ?? { backend: 'file', path: join(dir, 'device-rsa-key.pem') },
      oidc: { issuer },
      profiles: {
        azure: {
          type: 'azure-federated',
          tenant_id: TENANT,
          client_id: CLIENT,
          scopes: [ARM, VAULT],
          authority: entra.url,
          federated_token_file: true,
        },
        ...o.profiles?.({ emulator, entra, issuer }),
      },
    }),
    { mode: 0o600 },
  );
  const env: NodeJS.ProcessEnv = { HOME: dir, CREDPORT_CONFIG: configFile, NODE_EXTRA_CA_CERTS: caFile, ...o.env };
  const daemon = spawnCli(['serve', '--config', configFile], env);
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await entra.close();
    await emulator.close();
  };
  let last = '';
  // Degraded exits non-zero but still prints the report.
  const ok = o.waitForOk === false ? () => true : (text: string) => (JSON.parse(text) as { status?: string }).status === 'ok';
  try {
    await waitFor(async () => {
      const r = runCli(['status', '--json'], env);
      last = r.stdout + r.stderr;
      if (!r.stdout.startsWith('{')) return undefined;
      return ok(r.stdout) ? true : undefined;
    }, 200);
  } catch (err) {
    await stop();
    throw new Error(`the daemon did not come up with valid Azure credentials: ${(err as Error).message}\n${last}\n${daemon.stderr()}`);
  }
  return { dir, configFile, caFile, emulator, entra, device, rsa, issuer, baseUrl, env, close: stop };
}
