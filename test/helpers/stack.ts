/**
 * A whole credport stack on loopback for tests: the emulator as issuer host and
 * STS, a fresh file key, a config file written and loaded the way a user's is,
 * and the daemon, with every log line captured (at trace) for secret scans.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'smol-toml';
import { loadConfig, type ResolvedConfig } from '../../daemon/config/load.js';
import { startDaemon, type RunningDaemon } from '../../daemon/daemon.js';
import { startEmulator, type Emulator } from '../../emulator/index.js';
import { defaultSubject } from '../../daemon/identity/jwt.js';
import { exportIssuer, publishedJwk } from '../../daemon/identity/issuer-documents.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import { createLogger } from '../../daemon/logging/logger.js';
import type { ProviderTuning } from '../../daemon/providers/create-providers.js';
import type { Clock } from '../../daemon/refresh/clock.js';
import type { HandoutSink } from '../../daemon/server/context.js';

export const ACCOUNT = '111122223333';
export const roleArnFor = (name: string): string => `arn:aws:iam::${ACCOUNT}:role/${name}`;

export interface StackOptions {
  /** Profile name -> extra keys for its table. Default: one profile `default`. */
  profiles?: Record<string, Record<string, unknown>>;
  refresh?: Record<string, unknown>;
  daemon?: Record<string, unknown>;
  /** Start the daemon (default true). False leaves it to the test, e.g. to spawn a process. */
  startDaemon?: boolean;
  clock?: Clock;
  random?: () => number;
  /** SDK attempts per refresh (default 1 so faults show at once). */
  maxAttempts?: number;
  /** More provider/refresher tuning (deadlines, body cap, request wait). */
  tuning?: ProviderTuning;
  /** Before the daemon starts: set faults, lifetimes, trust anchors, roles. */
  beforeStart?: (emulator: Emulator) => void;
  /** Use another stack's device key (its certificates then match), instead of a new one. */
  keyFrom?: Stack;
  /** Where the daemon records handouts (default: none). */
  audit?: HandoutSink;
  /** The emulator runs on `clock` too (certificate dates, request windows, credential expiry). */
  emulatorOnClock?: boolean;
  /** How long the start waits for the first fetches before building fastify (DaemonOptions). */
  firstFetchWaitMs?: number;
}

/** Profile values that name this stack's emulator, which only exists once the stack starts. */
function emulatorPlaceholders(v: unknown, e: Emulator): unknown {
  if (v === 'EMULATOR') return e.rolesAnywhereEndpoint;
  if (v === 'EMULATOR-STS') return e.stsEndpoint;
  if (v === 'EMULATOR-GCP-STS') return e.gcpStsEndpoint;
  if (v === 'EMULATOR-GCP-IAM') return e.iamCredentialsEndpoint;
  // Nested tables ([profiles.X.renewal]) may name the emulator too.
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, emulatorPlaceholders(x, e)]));
  }
  return v;
}

export interface Stack {
  dir: string;
  configFile: string;
  config: ResolvedConfig;
  emulator: Emulator;
  signer: FileKeySigner;
  daemon?: RunningDaemon;
  /** Every log line the in-process daemon wrote (JSON text). */
  logs: string[];
  token: () => string;
  close(): Promise<void>;
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'credport-test-'));
  const issuerDir = join(dir, 'issuer');
  mkdirSync(issuerDir);
  const clock = o.clock;
  const emulator = await startEmulator({ issuerDir, ...(o.emulatorOnClock && clock ? { now: () => clock.now() } : {}) });
  const keyPath = o.keyFrom?.config.key.backend === 'file' ? o.keyFrom.config.key.path : join(dir, 'device-key.pem');
  const signer = o.keyFrom ? FileKeySigner.open(keyPath) : FileKeySigner.create(keyPath);
  const issuer = emulator.issuerBaseUrl;
  exportIssuer(issuerDir, issuer, publishedJwk(signer.publicJwk(), signer.thumbprint));
  emulator.createOpenIDConnectProvider({ url: issuer, clientIds: ['sts.amazonaws.com'] });
  const host = issuer.replace(/^https?:\/\//, '');
  const profiles = o.profiles ?? { default: {} };
  const profileTables: Record<string, Record<string, unknown>> = {};
  for (const [name, extra] of Object.entries(profiles)) {
    // Other profile types bring their own tables; their roles and trust are the test's to set up.
    if (extra.type !== undefined && extra.type !== 'aws-oidc') {
      profileTables[name] = Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, emulatorPlaceholders(v, emulator)]));
      continue;
    }
    const roleArn = (extra.role_arn as string | undefined) ?? roleArnFor(`role-${name}`);
    emulator.createRole({
      arn: roleArn,
      maxSessionDurationSeconds: 43200,
      trust: {
        providerUrl: issuer,
        conditions: { StringEquals: { [`${host}:sub`]: defaultSubject(signer), [`${host}:aud`]: 'sts.amazonaws.com' } },
      },
    });
    profileTables[name] = {
      type: 'aws-oidc',
      role_arn: roleArn,
      region: 'us-east-1',
      duration_seconds: 3600,
      sts_endpoint: emulator.stsEndpoint,
      ...extra,
    };
  }
  const configFile = join(dir, 'config.toml');
  writeFileSync(
    configFile,
    stringify({
      daemon: {
        listen: '127.0.0.1:0',
        token_file: join(dir, 'token'),
        lock_file: join(dir, 'daemon.pid'),
        audit_file: join(dir, 'audit.log'),
        log_level: 'trace',
        ...o.daemon,
      },
      key: { backend: 'file', path: keyPath },
      oidc: { issuer },
      refresh: { ...o.refresh },
      profiles: profileTables,
    }),
  );
  const config = loadConfig(configFile, process.env);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      cb();
    },
  });
  o.beforeStart?.(emulator);
  let daemon: RunningDaemon | undefined;
  if (o.startDaemon !== false) {
    daemon = await startDaemon({
      config,
      signer,
      logger: createLogger({ level: 'trace', destination: sink }),
      tuning: { maxAttempts: o.maxAttempts ?? 1, ...o.tuning },
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.random ? { random: o.random } : {}),
      ...(o.audit ? { audit: o.audit } : {}),
      ...(o.firstFetchWaitMs !== undefined ? { firstFetchWaitMs: o.firstFetchWaitMs } : {}),
    });
  }
  return {
    dir,
    configFile,
    config,
    emulator,
    signer,
    ...(daemon ? { daemon } : {}),
    logs,
    token: () => readFileSync(join(dir, 'token'), 'utf8'),
    async close() {
      await daemon?.close();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
