/**
 * Puts the parts together: key, providers, refreshers, server. Used by
 * `credport serve`, `credport demo` and the tests, so all three run the same
 * daemon. A reload swaps profiles in place, takes up a file key replaced at
 * the same path (`key rotate`) and a replaced token file (`token rotate`);
 * what needs a new socket or another key (listen, token file path, [key]) is
 * reported as needing a restart.
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { ResolvedConfig } from './config/load.js';
import { formatListen, type ListenAddress } from './config/listen.js';
import { auditLogFromConfig } from './audit/from-config.js';
import { NullAuditLog } from './audit/audit-log.js';
import { openSigner } from './keys/open-signer.js';
import { SwappableSigner } from './keys/swappable-signer.js';
import { AccessPolicy } from './peer/access-policy.js';
import { PeerIdentifier } from './peer/peer-identifier.js';
import { chooseOwnerLookup, type OwnerQuery } from './peer/socket-owner.js';
import type { KeySigner } from './keys/signer.js';
import type { Logger } from './logging/logger.js';
import { profileType } from './clouds/specs.js';
import {
  brokenProvider,
  CloudRuntimes,
  profileFingerprint,
  profileOrder,
  refreshDeadlineMs,
  type ManagedProvider,
  type ProviderDeps,
  type ProviderTuning,
} from './providers/create-providers.js';
import { ProfileSet } from './profiles/profile-set.js';
import { ProviderError } from './providers/types.js';
import { systemClock, type Clock } from './refresh/clock.js';
import { policyFromConfig } from './refresh/policy.js';
import { ProfileRefresher, type HeldCredentials } from './refresh/profile-refresher.js';
import { RefreshScheduler } from './refresh/scheduler.js';
import type { HandoutSink, ServerContext } from './server/context.js';
import type { Binding } from './server/guards.js';
import { buildHealthReport, type ReloadState } from './server/health-report.js';
import { DaemonMetrics } from './server/metrics.js';
import { flushHandouts } from './server/handout.js';
import { createHttpFront } from './server/http-server.js';
import { closeHttpServer, listenAlso, listenHosts, listenHttp, type ExtraListeners } from './server/listeners.js';
import type { PeerAccess } from './server/peer-gate.js';
import { rotateTokenFile } from './server/token.js';
import { watchTokenFile } from './server/token-file-watch.js';
import { VERSION } from './version.js';

/** How long the first fetches may hold back fastify's load (the rest of the server) at start. */
export const FIRST_FETCH_WAIT_MS = 1_000;

export interface DaemonOptions {
  config: ResolvedConfig;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
  /** Overrides [daemon] listen (the --listen flag). */
  listen?: ListenAddress;
  /** An already open signer (tests, hardware backends opened by the caller). */
  signer?: KeySigner;
  tuning?: ProviderTuning;
  /** Where handouts are recorded; default: the audit log the config names. */
  audit?: HandoutSink;
  /** How a connection's peer is asked of the kernel (default: the best this platform has). */
  peerLookup?: OwnerQuery;
  /**
   * Called once every address is bound, before fastify is built: from then on a client can connect, so
   * `serve` publishes its runtime file here rather than when the start is over.
   */
  onBound?: (where: { url: string; listen: string[] }) => void;
  /** How long the first fetches may hold fastify's load back (default FIRST_FETCH_WAIT_MS). */
  firstFetchWaitMs?: number;
}

function accessPolicy(config: ResolvedConfig): AccessPolicy {
  return new AccessPolicy({
    ownerUid: process.getuid?.() ?? -1,
    allowUids: config.daemon.allowUids,
    monitorUids: config.daemon.monitorUids,
  });
}

export interface ReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
  /** Settings that only take effect after a restart. */
  needsRestart: string[];
}

export interface RunningDaemon {
  readonly port: number;
  readonly host: string;
  /** http://127.0.0.1:PORT (or [::1]) — the base URL clients should use. */
  readonly url: string;
  readonly scheduler: RefreshScheduler;
  readonly server: FastifyInstance;
  readonly signer: KeySigner;
  readonly metrics: DaemonMetrics;
  /** Loads the modules a new config's profile types need; await it before reload(). */
  prepare(config: ResolvedConfig): Promise<void>;
  /** Applies a new, already validated config (after prepare() for a config that may add profile types). */
  reload(config: ResolvedConfig): ReloadResult;
  /** Records a reload that failed validation (shown by /health and `credport status`). */
  reloadFailed(error: string): void;
  close(): Promise<void>;
}

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
}

function listenError(err: unknown, listen: ListenAddress, owner: (port: number) => string | undefined): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    const who = owner(listen.port);
    return new PortInUseError(
      `${formatListen(listen)} is already in use${who ? ` by ${who}` : ''}; stop the other process or choose another address with --listen`,
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    const addr = (err as { address?: string }).address ?? listen.host;
    return new PortInUseError(
      `cannot listen on ${addr} (port ${listen.port}): that address does not exist on this machine${addr.includes(':') ? ' (IPv6 disabled?)' : ''}; listen on 127.0.0.1:${listen.port} instead`,
    );
  }
  if (code === 'EACCES') {
    return new PortInUseError(
      `not allowed to listen on ${formatListen(listen)}; ports below 1024 need privileges on Linux (see docs/setup-linux.md) or use --listen 127.0.0.1:8080`,
    );
  }
  return err as Error;
}

export async function startDaemon(o: DaemonOptions): Promise<RunningDaemon> {
  const { logger } = o;
  let config = o.config;
  const clock = o.clock ?? systemClock;
  const startedAt = clock.now();
  const ecsToken = rotateTokenFile(config.daemon.tokenFile);
  // An unsafe audit file (a link, readable by others) stops the start here, before anything is served.
  const auditLog = o.audit
    ? undefined
    : auditLogFromConfig(config.daemon, (err) =>
        logger.warn({ err: err.message }, 'the audit log cannot be written; handouts are counted and kept until it can'),
      );
  const audit: HandoutSink = o.audit ?? { enabled: !(auditLog instanceof NullAuditLog), record: (e, times) => auditLog?.record(e, times) };
  const metrics = new DaemonMetrics();
  let policy = accessPolicy(config);
  const access: PeerAccess = {
    identifier: new PeerIdentifier({ lookup: o.peerLookup ?? chooseOwnerLookup().lookup, onLookup: (ok) => metrics.peerLookup(ok) }),
    policy: () => policy,
    refused: (reason) => metrics.refusal(reason),
  };
  const signer = new SwappableSigner(metrics.instrumentSigner(o.signer ?? (await openSigner(config.key, { now: () => clock.now() }))));
  /**
   * A file key replaced at the same path (`credport key rotate`) is taken up on reload; a key the
   * caller opened, or one in hardware (a session per reload is not free), needs a restart as before.
   */
  const reopenFileKey = async (key: ResolvedConfig['key']) => {
    if (o.signer || key.backend !== 'file') return;
    let next: KeySigner;
    try {
      next = await openSigner(key);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'the key file cannot be opened; signing with the key opened before');
      return;
    }
    if (next.thumbprint === signer.thumbprint) return void (await next.close());
    const old = signer.swap(metrics.instrumentSigner(next));
    logger.info({ kid: next.thumbprint, previous: old.thumbprint }, 'device key replaced: new tokens carry the new kid');
    await old.close();
  };
  const tuning: ProviderTuning = { ...(o.clock ? { now: () => clock.now() } : {}), ...o.tuning };
  const runtimes = await CloudRuntimes.load(config);
  const profiles = new ProfileSet();
  profiles.setDefaults(config.defaults);
  const scheduler = new RefreshScheduler(profiles.refreshers, clock);
  const ctx: ServerContext = {
    profiles,
    daemonToken: ecsToken,
    tokenFile: config.daemon.tokenFile,
    now: () => clock.now(),
    access,
    audit,
    metrics,
    health: () =>
      buildHealthReport({
        version: VERSION,
        startedAt,
        now: clock.now(),
        key: { ...signer.describe(), thumbprint: signer.thumbprint },
        defaultProfile: config.defaultProfile,
        profiles: profiles.entries(),
        reload: reloadState,
        certificateWarningDays: config.daemon.certificate_warning_days,
      }),
  };
  let reloadState: ReloadState = { file: config.file, loadedAt: new Date(startedAt).toISOString(), lastError: null };
  const tokenWatch = watchTokenFile(
    config.daemon.tokenFile,
    ecsToken,
    (token) => {
      ctx.daemonToken = token;
      logger.info({ tokenFile: config.daemon.tokenFile }, 'daemon token replaced from the token file; the old token no longer works');
    },
    (err) => logger.warn({ err: err.message }, 'the token file changed but holds no usable token; the current token stays in force'),
  );
  ctx.refreshToken = () => tokenWatch.refresh();

  const deps = (): ProviderDeps => ({
    signer,
    env: process.env,
    config,
    tuning,
    // Looked up at fetch time, so a chained profile always signs with its source's current credentials.
    source: (n) => () => {
      const r = profiles.get(n)?.refresher;
      if (!r) return Promise.reject(new ProviderError('SourceProfileMissing', `source profile ${n} is not configured`, false));
      return r.get();
    },
    sourceUnattended: (n) => profiles.get(n)?.provider.unattended ?? true,
    background: { clock, logger },
  });
  /** `initial`: the still-valid credentials of the refresher this one replaces (a reload). */
  const addProfile = (name: string, initial?: HeldCredentials) => {
    const p = config.profiles.get(name);
    const cloud = p && profileType(p.type)?.cloud.name;
    if (!p || !cloud) return;
    let provider: ManagedProvider;
    try {
      provider = runtimes.createProvider(name, p, deps());
    } catch (err) {
      logger.error({ profile: name, err: (err as Error).message }, 'profile cannot start');
      provider = brokenProvider(name, p, err);
    }
    const refresher = new ProfileRefresher({
      name,
      provider,
      policy: policyFromConfig(config.refresh),
      clock,
      logger,
      ...(o.random ? { random: o.random } : {}),
      onAttempt: (profile, ok, err) => metrics.refreshAttempt(profile, ok, err?.code),
      ...(tuning.requestWaitMs !== undefined ? { requestWaitMs: tuning.requestWaitMs } : {}),
      attemptDeadlineMs: refreshDeadlineMs(tuning),
      ...(initial ? { initial } : {}),
    });
    profiles.add({
      name,
      cloud,
      provider,
      refresher,
      description: provider.describe(),
      ...(p.allow_executables ? { executables: p.allow_executables } : {}),
      fingerprint: profileFingerprint(name, config),
    });
  };
  for (const name of profileOrder(config)) addProfile(name);
  metrics.watchProfiles(profiles.refreshers);
  metrics.watchCertificates(() => profiles.entries());
  const endpoints = [...runtimes.byCloud.values()].flatMap((r) => r.endpoints.map((e) => e.create(ctx)));

  let binding: Binding = { port: 0, addresses: [] };
  const front = createHttpFront({ ctx, logger, binding: () => binding, endpoints });
  // The first fetches start now, before the socket is even bound, so that the upstream round trip runs
  // beside the rest of the start.
  scheduler.start();
  let extra: ExtraListeners | undefined;
  /**
   * A start that fails stops what it started: the sockets (at once, answering nothing: a held request
   * would otherwise keep the server from closing), the refreshes, the key, the audit log.
   */
  const abandon = async () => {
    front.held.close();
    const closed = Promise.all([closeHttpServer(front.server), extra?.close()]);
    front.server.closeAllConnections();
    await closed;
    scheduler.stop();
    profiles.dropAll();
    await signer.close();
    await auditLog?.close();
  };
  const listen = o.listen ?? config.daemon.listen;
  const [firstHost = listen.host, ...otherHosts] = listenHosts(listen);
  try {
    await listenHttp(front.server, firstHost, listen.port);
    extra = await listenAlso(front.server, otherHosts, (front.server.address() as AddressInfo).port);
  } catch (err) {
    await abandon();
    const { describePortOwner } = await import('./service/port-owner.js');
    throw listenError(err, listen, describePortOwner);
  }
  const addr = front.server.address() as AddressInfo;
  binding = { port: addr.port, addresses: [addr.address, ...extra.addresses] };
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const listening = binding.addresses.map((a) => formatListen({ host: a, port: addr.port }));
  let server: FastifyInstance;
  try {
    o.onBound?.({ url, listen: listening });
    // fastify is loaded and built only once the first fetches have settled: its load holds the event
    // loop longer than a fetch takes, and the first credentials would wait behind it. Meanwhile the fast
    // path serves what it can, again as each fetch settles, and the rest waits (server/held-requests.ts).
    // A slow upstream holds fastify back by the wait at most; a request only fastify answers, not at all.
    await Promise.race([
      scheduler.settled(o.firstFetchWaitMs ?? FIRST_FETCH_WAIT_MS, () => front.held.retryAll()),
      front.held.routerWanted,
    ]);
    front.held.retryAll();
    const { buildServer } = await import('./server/app.js');
    const built = buildServer({ ctx, logger, front, metrics, endpoints });
    server = built.app;
    await server.ready();
    front.held.open(built.router);
  } catch (err) {
    await abandon();
    throw err;
  }
  logger.info(
    {
      listen: listening,
      profiles: profiles.names(),
      key: signer.describe().backend,
      version: VERSION,
    },
    'credport daemon started',
  );

  let closed = false;
  return {
    port: addr.port,
    host: addr.address,
    url,
    scheduler,
    server,
    signer,
    metrics,
    reload(next) {
      // Against the config the daemon started with: a later reload that changes something else
      // must not hide that the socket (or key, token, log file) is still the old one.
      const started = o.config;
      const needsRestart: string[] = [];
      if (JSON.stringify(next.key) !== JSON.stringify(started.key)) needsRestart.push('key');
      if (!o.listen && formatListen(next.daemon.listen) !== formatListen(started.daemon.listen)) needsRestart.push('daemon.listen');
      if (next.daemon.tokenFile !== started.daemon.tokenFile) needsRestart.push('daemon.token_file');
      if (next.daemon.logFile !== started.daemon.logFile) needsRestart.push('daemon.log_file');
      if (next.daemon.auditFile !== started.daemon.auditFile) needsRestart.push('daemon.audit_file');
      for (const cloud of runtimes.missing(next)) needsRestart.push(`profiles (the first ${cloud} profile)`);
      tokenWatch.refresh();
      if (!needsRestart.includes('key')) void reopenFileKey(next.key);
      const prev = config;
      const { added, removed, changed } = profiles.diff(next, profileFingerprint);
      config = next;
      // A changed profile keeps serving what it holds until its new definition has produced
      // credentials: they are handed to the new refresher, which fetches at once.
      const handed = new Map<string, HeldCredentials>();
      for (const n of changed) {
        const h = profiles.get(n)?.refresher.handover();
        if (h) handed.set(n, h);
      }
      for (const n of [...removed, ...changed]) profiles.drop(n);
      if (JSON.stringify(next.refresh) !== JSON.stringify(prev.refresh)) {
        const policy = policyFromConfig(next.refresh);
        for (const r of profiles.refreshers.values()) r.setPolicy(policy);
      }
      const toAdd = new Set([...changed, ...added]);
      for (const n of profileOrder(next).filter((x) => toAdd.has(x))) {
        addProfile(n, handed.get(n));
        profiles.get(n)?.refresher.start();
      }
      profiles.setDefaults(next.defaults);
      policy = accessPolicy(next);
      logger.level = next.daemon.log_level;
      reloadState = { file: next.file, loadedAt: new Date(clock.now()).toISOString(), lastError: null, needsRestart };
      const result = { added, removed, changed, needsRestart };
      logger.info(result, 'configuration reloaded');
      if (needsRestart.length > 0) logger.warn({ settings: needsRestart }, 'some changes take effect only after a restart');
      return result;
    },
    prepare(next) {
      return runtimes.prepare(next);
    },
    reloadFailed(error) {
      reloadState = { ...reloadState, lastError: { message: error, at: new Date(clock.now()).toISOString() } };
      logger.error({ err: error }, 'reload rejected; the running configuration is kept');
    },
    async close() {
      if (closed) return;
      closed = true;
      // The server first: it waits for in-flight requests, which may be waiting on a refresh
      // that must be allowed to finish. Only then are refreshes stopped.
      // The extra listeners stop accepting at once, but report closed only when their connections,
      // served by the HTTP server, are gone: so they are awaited after it.
      const extraClosed = extra?.close();
      // fastify did not bind the socket, so its close leaves the node server to this one.
      await server.close();
      await closeHttpServer(front.server);
      await extraClosed;
      scheduler.stop();
      profiles.dropAll();
      await signer.close();
      // Repeats batched per connection go in before the log closes, whichever closed first.
      flushHandouts(ctx);
      await auditLog?.close();
      logger.info('credport daemon stopped');
    },
  };
}
