/**
 * A daemon and the emulator on one fake clock, for the fault tests: hour-long credentials live their
 * whole life in milliseconds, while every upstream call is still real HTTP to the emulator. The
 * emulator's clock is the daemon's plus an offset the test can change (clock skew), and the emulator
 * can be stopped and started again on the same port (an upstream that refuses connections, then
 * returns). Profiles: `sts` (aws-oidc, AssumeRoleWithWebIdentity) and/or `ra` (aws-rolesanywhere
 * signed with the device key, certificate from a throwaway CA), whichever the test asks for.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'smol-toml';
import { loadConfig, type ResolvedConfig } from '../../daemon/config/load.js';
import { startDaemon, type RunningDaemon } from '../../daemon/daemon.js';
import { startEmulator, type Emulator, type IssuedCredentials } from '../../emulator/index.js';
import { defaultSubject } from '../../daemon/identity/jwt.js';
import { exportIssuer, publishedJwk } from '../../daemon/identity/issuer-documents.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import type { KeySigner } from '../../daemon/keys/signer.js';
import { createLogger } from '../../daemon/logging/logger.js';
import type { ProviderTuning } from '../../daemon/providers/create-providers.js';
import type { Clock, TimerHandle } from '../../daemon/refresh/clock.js';
import type { ProfileStatus } from '../../daemon/refresh/profile-refresher.js';
import { initCa, issueCertificate } from '../../daemon/x509/ca.js';
import { createCsr } from '../../daemon/x509/csr.js';
import { FakeClock } from './fake-clock.js';

export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const ACCOUNT = '111122223333';
export const REGION = 'eu-west-1';
export const STS_ROLE = `arn:aws:iam::${ACCOUNT}:role/faults-sts`;
export const RA_ROLE = `arn:aws:iam::${ACCOUNT}:role/faults-ra`;
export const TRUST_ANCHOR = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:trust-anchor/11111111-2222-3333-4444-555555555555`;
export const RA_PROFILE = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:profile/66666666-7777-8888-9999-000000000000`;

/**
 * The FakeClock, plus the one thing the fault tests need that it does not expose: when its next timer
 * is due. Time is then moved one timer at a time, and after each the test waits (in real time) for the
 * refresh that timer started to finish its real HTTP call, so the fake clock never moves under a
 * call in flight and every fetch completes at the fake instant it started.
 */
export class SteppingClock implements Clock {
  readonly fake: FakeClock;
  readonly #due = new Set<{ at: number }>();

  constructor(start?: number) {
    this.fake = new FakeClock(start);
  }

  now(): number {
    return this.fake.now();
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const entry = { at: this.fake.now() + Math.max(0, ms) };
    this.#due.add(entry);
    const handle = this.fake.setTimer(() => {
      this.#due.delete(entry);
      fn();
    }, ms);
    return {
      cancel: () => {
        this.#due.delete(entry);
        handle.cancel();
      },
    };
  }

  nextTimerAt(): number | undefined {
    let next: number | undefined;
    for (const e of this.#due) if (next === undefined || e.at < next) next = e.at;
    return next;
  }
}

export type Service = 'sts' | 'rolesanywhere';
export const PROFILE_OF: Record<Service, string> = { sts: 'sts', rolesanywhere: 'ra' };

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

export type ProfileHealth = ProfileStatus & { type: string };
export interface HealthDoc {
  httpStatus: number;
  status: string;
  profiles: Record<string, ProfileHealth>;
}

export interface FaultStackOptions {
  services: Service[];
  refresh?: Record<string, unknown>;
  /** Default { maxAttempts: 1, requestTimeoutMs: 500 }: every fault surfaces on the first attempt. */
  tuning?: ProviderTuning;
  /** Jitter source for the refresher; default () => 1, so backoff steps are exactly 2, 4, 8 ... s. */
  random?: () => number;
  /**
   * Another key backend: its [key] table and a signer opened on it, used for the JWKS and the CSR. With
   * `daemonOpensKey` that signer is closed before the daemon starts and the daemon opens the key from
   * the table itself, as `credport serve` does (and this process then holds one session, not two).
   */
  key?: { table: Record<string, unknown>; signer: KeySigner; daemonOpensKey?: boolean };
  /** Before the daemon starts (faults, lifetimes). */
  beforeStart?: (e: Emulator) => void;
  start?: number;
}

export interface FaultStack {
  readonly dir: string;
  readonly clock: SteppingClock;
  /** The emulator now running (a new object after restartEmulator). */
  readonly emulator: Emulator;
  readonly daemon: RunningDaemon;
  readonly config: ResolvedConfig;
  readonly logs: string[];
  /** Emulator clock minus daemon clock, ms. */
  skewMs: number;
  emulatorNow(): number;
  /** A credential minted by this stack's emulator, whichever incarnation minted it. */
  issued(accessKeyId: string): IssuedCredentials | undefined;
  /** Total upstream calls over every incarnation of the emulator. */
  upstreamCalls(): number;
  ecs(profile: string): Promise<Answer>;
  imds(): Promise<Answer>;
  health(): Promise<HealthDoc>;
  status(profile: string): ProfileStatus;
  /** Waits (real time, bounded) until no profile has a refresh in flight. */
  idle(): Promise<void>;
  /** Moves the fake clock to `at`, one due timer at a time, letting each refresh finish. */
  advanceTo(at: number): Promise<void>;
  advance(ms: number): Promise<void>;
  stopEmulator(): Promise<void>;
  restartEmulator(): Promise<void>;
  close(): Promise<void>;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    body =
      typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed };
  } catch {
    body = {};
  }
  return { status: res.status, body, text };
}

export async function startFaultStack(o: FaultStackOptions): Promise<FaultStack> {
  const dir = mkdtempSync(join(tmpdir(), 'credport-faults-'));
  const emulators: Emulator[] = [];
  try {
    return await setUp(o, dir, emulators);
  } catch (err) {
    // A stack that failed half-way leaves no server listening and no directory behind.
    await Promise.all(emulators.map((e) => e.close()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function setUp(o: FaultStackOptions, dir: string, emulators: Emulator[]): Promise<FaultStack> {
  const issuerDir = join(dir, 'issuer');
  mkdirSync(issuerDir);
  const clock = new SteppingClock(o.start);
  let skewMs = 0;
  const emulatorNow = (): number => clock.now() + skewMs;
  let emulator = await startEmulator({ issuerDir, now: emulatorNow });
  emulators.push(emulator);
  let stopped = false;

  const signer: KeySigner = o.key?.signer ?? FileKeySigner.create(join(dir, 'device-key.pem'));
  const keyTable = o.key?.table ?? { backend: 'file', path: join(dir, 'device-key.pem') };
  const issuer = emulator.issuerBaseUrl;
  exportIssuer(issuerDir, issuer, publishedJwk(signer.publicJwk(), signer.thumbprint));
  const host = issuer.replace(/^https?:\/\//, '');

  // Certificate and CA dated an hour before the fake start, so an emulator clock set minutes behind
  // (the skew tests) still finds them valid.
  let caPem = '';
  const certPath = join(dir, 'device.pem');
  if (o.services.includes('rolesanywhere')) {
    const issuedAt = (): number => clock.now() - HOUR;
    const ca = await initCa({ dir: join(dir, 'ca'), subject: 'CN=credport fault tests CA', days: 3650, now: issuedAt });
    caPem = ca.certificatePem;
    const csr = await createCsr(signer, { subject: 'CN=faults-device' });
    await issueCertificate({ caDir: join(dir, 'ca'), csrPem: csr.pem, days: 365, outPath: certPath, now: issuedAt });
  }

  // What a fresh emulator must be told; run again after a restart, which forgets everything.
  const provision = (e: Emulator): void => {
    if (o.services.includes('sts')) {
      e.createOpenIDConnectProvider({ url: issuer, clientIds: ['sts.amazonaws.com'] });
      e.createRole({
        arn: STS_ROLE,
        maxSessionDurationSeconds: 43200,
        trust: {
          providerUrl: issuer,
          conditions: { StringEquals: { [`${host}:sub`]: defaultSubject(signer), [`${host}:aud`]: 'sts.amazonaws.com' } },
        },
      });
    }
    if (o.services.includes('rolesanywhere')) {
      e.createTrustAnchor({ arn: TRUST_ANCHOR, caCertificatePem: caPem });
      e.createRolesAnywhereProfile({ arn: RA_PROFILE, roleArns: [RA_ROLE], durationSeconds: 43200 });
      e.createRole({ arn: RA_ROLE, maxSessionDurationSeconds: 43200, trust: { rolesAnywhere: true } });
    }
  };
  provision(emulator);

  const profiles: Record<string, Record<string, unknown>> = {};
  o.services.forEach((s, i) => {
    const table =
      s === 'sts'
        ? { type: 'aws-oidc', role_arn: STS_ROLE, region: 'us-east-1', duration_seconds: 3600, sts_endpoint: emulator.stsEndpoint }
        : {
            type: 'aws-rolesanywhere',
            certificate: certPath,
            trust_anchor_arn: TRUST_ANCHOR,
            profile_arn: RA_PROFILE,
            role_arn: RA_ROLE,
            duration_seconds: 3600,
            endpoint: emulator.rolesAnywhereEndpoint,
          };
    profiles[PROFILE_OF[s]] = { ...table, ...(i === 0 && o.services.length > 1 ? { default: true } : {}) };
  });
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
      },
      key: keyTable,
      oidc: { issuer },
      refresh: { ...o.refresh },
      profiles,
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
  if (o.key?.daemonOpensKey) await signer.close();
  const daemon = await startDaemon({
    config,
    ...(o.key?.daemonOpensKey ? {} : { signer }),
    logger: createLogger({ level: 'trace', destination: sink }),
    clock,
    random: o.random ?? (() => 1),
    tuning: o.tuning ?? { maxAttempts: 1, requestTimeoutMs: 500 },
  });
  const token = readFileSync(join(dir, 'token'), 'utf8');

  const refreshers = daemon.scheduler.refreshers;
  const idle = async (): Promise<void> => {
    // Bounded: 3000 polls of ~2 ms; a refresh that takes longer than that is itself a failure.
    for (let i = 0; i < 3000; i++) {
      if (![...refreshers.values()].some((r) => r.status().refreshing)) return;
      await sleep(2);
    }
    throw new Error('a refresh was still in flight after ~6 s of real time');
  };

  const advanceTo = async (at: number): Promise<void> => {
    await idle();
    // Bounded: no test moves through more than 100 000 timers.
    for (let i = 0; i < 100_000; i++) {
      const next = clock.nextTimerAt();
      if (next === undefined || next > at) break;
      await clock.fake.advance(Math.max(0, next - clock.now()));
      await idle();
    }
    if (at > clock.now()) await clock.fake.advance(at - clock.now());
    await idle();
  };

  return {
    dir,
    clock,
    get emulator() {
      return emulator;
    },
    daemon,
    config,
    logs,
    get skewMs() {
      return skewMs;
    },
    set skewMs(v: number) {
      skewMs = v;
    },
    emulatorNow,
    issued(accessKeyId) {
      for (const e of emulators) {
        const found = e.issued(accessKeyId);
        if (found) return found;
      }
      return undefined;
    },
    upstreamCalls() {
      return emulators.reduce((n, e) => n + e.stats.stsCalls + e.stats.rolesAnywhereCalls, 0);
    },
    async ecs(profile) {
      return answer(await fetch(`${daemon.url}/v1/credentials/${profile}`, { headers: { authorization: token } }));
    },
    async imds() {
      const put = await fetch(`${daemon.url}/latest/api/token`, {
        method: 'PUT',
        headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
      });
      const t = await put.text();
      const role = await (
        await fetch(`${daemon.url}/latest/meta-data/iam/security-credentials/`, { headers: { 'x-aws-ec2-metadata-token': t } })
      ).text();
      return answer(
        await fetch(`${daemon.url}/latest/meta-data/iam/security-credentials/${role}`, { headers: { 'x-aws-ec2-metadata-token': t } }),
      );
    },
    async health() {
      const a = await answer(await fetch(`${daemon.url}/health`));
      return { httpStatus: a.status, status: String(a.body.status), profiles: a.body.profiles as Record<string, ProfileHealth> };
    },
    status(profile) {
      const r = refreshers.get(profile);
      if (!r) throw new Error(`no profile ${profile}`);
      return r.status();
    },
    idle,
    advanceTo,
    advance: (ms) => advanceTo(clock.now() + ms),
    async stopEmulator() {
      stopped = true;
      await emulator.close();
    },
    async restartEmulator() {
      const port = Number(new URL(emulator.url).port);
      if (!stopped) await emulator.close();
      // Same port, so the daemon's configured endpoints and the issuer URL stay right.
      emulator = await startEmulator({ issuerDir, now: emulatorNow, port });
      emulators.push(emulator);
      provision(emulator);
      stopped = false;
    },
    async close() {
      await daemon.close();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Served {
  profile: string;
  /** Daemon (device) clock and emulator (service) clock when the request was made. */
  at: number;
  serviceAt: number;
  a: Answer;
}

/**
 * Walks the clock to `until` one timer at a time, asking each profile for credentials every `everyMs`;
 * `afterStep` runs after every step (with the answers so far) and ends the walk early by returning true.
 */
export async function walk(
  s: FaultStack,
  profiles: string[],
  until: number,
  everyMs: number,
  afterStep?: (served: readonly Served[]) => Promise<boolean | void>,
): Promise<Served[]> {
  const out: Served[] = [];
  let nextRequest = s.clock.now() + everyMs;
  // Bounded: a few hours of timers and requests is a few thousand steps.
  for (let i = 0; i < 20_000 && s.clock.now() < until; i++) {
    await s.advanceTo(Math.min(s.clock.nextTimerAt() ?? Number.POSITIVE_INFINITY, nextRequest, until));
    if (s.clock.now() >= nextRequest) {
      nextRequest += everyMs;
      for (const profile of profiles) out.push({ profile, at: s.clock.now(), serviceAt: s.emulatorNow(), a: await s.ecs(profile) });
    }
    if ((await afterStep?.(out)) === true) break;
  }
  return out;
}

/**
 * What is wrong with a 200 credentials body, if anything: the four fields must be non-empty strings
 * and Expiration at least `marginMs` after `nowMs` (the daemon's own rule).
 */
export function credentialProblems(body: Record<string, unknown>, nowMs: number, marginMs: number): string[] {
  const out: string[] = [];
  for (const field of ['AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration']) {
    const v = body[field];
    if (typeof v !== 'string' || v === '') out.push(`${field} is ${JSON.stringify(v)}`);
  }
  const exp = typeof body.Expiration === 'string' ? Date.parse(body.Expiration) : Number.NaN;
  if (Number.isNaN(exp)) out.push(`Expiration ${JSON.stringify(body.Expiration)} does not parse`);
  else if (exp - nowMs < marginMs)
    out.push(
      `Expiration ${String(body.Expiration)} is ${(exp - nowMs) / 1000} s away at ${new Date(nowMs).toISOString()}, under the ${marginMs / 1000} s margin`,
    );
  return out;
}
