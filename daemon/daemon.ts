/**
 * Puts the parts together: key, providers, refreshers, server. Used by
 * `credport serve`, `credport demo` and the tests, so all three run the same
 * daemon.
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { ResolvedConfig } from './config/load.js';
import { formatListen, type ListenAddress } from './config/listen.js';
import { openSigner } from './keys/open-signer.js';
import type { KeySigner } from './keys/signer.js';
import type { Logger } from './logging/logger.js';
import { createProviders, type ProviderTuning } from './providers/create-providers.js';
import { systemClock, type Clock } from './refresh/clock.js';
import { policyFromConfig } from './refresh/policy.js';
import { ProfileRefresher } from './refresh/profile-refresher.js';
import { RefreshScheduler } from './refresh/scheduler.js';
import { buildServer } from './server/app.js';
import type { Binding } from './server/guards.js';
import type { ServerContext } from './server/context.js';
import { buildHealthReport } from './server/health-report.js';
import { ImdsTokenStore } from './server/imds-tokens.js';
import { ensureTokenFile } from './server/token.js';
import { VERSION } from './version.js';

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
}

export interface RunningDaemon {
  readonly port: number;
  readonly host: string;
  /** http://127.0.0.1:PORT (or [::1]) — the base URL clients should use. */
  readonly url: string;
  readonly scheduler: RefreshScheduler;
  readonly server: FastifyInstance;
  readonly signer: KeySigner;
  close(): Promise<void>;
}

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
}

export async function startDaemon(o: DaemonOptions): Promise<RunningDaemon> {
  const { config, logger } = o;
  const clock = o.clock ?? systemClock;
  const startedAt = clock.now();
  const signer = o.signer ?? (await openSigner(config.key));
  const ecsToken = ensureTokenFile(config.daemon.tokenFile);
  const providers = createProviders(config, signer, { ...(o.clock ? { now: () => clock.now() } : {}), ...o.tuning });
  const policy = policyFromConfig(config.refresh);
  const refreshers = new Map<string, ProfileRefresher>();
  const descriptions = new Map([...providers].map(([n, p]) => [n, p.describe()] as const));
  for (const [name, provider] of providers) {
    refreshers.set(name, new ProfileRefresher({ name, provider, policy, clock, logger, ...(o.random ? { random: o.random } : {}) }));
  }
  const scheduler = new RefreshScheduler(refreshers, clock);
  const keyInfo = { ...signer.describe(), thumbprint: signer.thumbprint };
  const ctx: ServerContext = {
    refreshers,
    descriptions,
    defaultProfile: config.defaultProfile,
    ecsToken,
    imdsTokens: new ImdsTokenStore(() => clock.now()),
    now: () => clock.now(),
    health: () =>
      buildHealthReport({ version: VERSION, startedAt, now: clock.now(), key: keyInfo, defaultProfile: config.defaultProfile, refreshers, descriptions }),
  };
  let binding: Binding = { port: 0, addresses: [] };
  const server = buildServer({ ctx, logger, binding: () => binding });
  const listen = o.listen ?? config.daemon.listen;
  try {
    await server.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    for (const p of providers.values()) p.destroy?.();
    await signer.close();
    if (code === 'EADDRINUSE') throw new PortInUseError(`${formatListen(listen)} is already in use; stop the other process or choose another address with --listen`);
    if (code === 'EACCES') {
      throw new PortInUseError(
        `not allowed to listen on ${formatListen(listen)}; ports below 1024 need privileges on Linux (see docs/setup-linux.md) or use --listen 127.0.0.1:8080`,
      );
    }
    throw err;
  }
  const addr = server.server.address() as AddressInfo;
  const boundPort = addr.port;
  binding = { port: boundPort, addresses: server.addresses().flatMap((a) => (typeof a === 'string' ? [] : [a.address])) };
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${boundPort}`;
  scheduler.start();
  logger.info(
    { listen: server.addresses().map((a) => (typeof a === 'string' ? a : a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`)), profiles: [...refreshers.keys()], key: keyInfo.backend, version: VERSION },
    'credport daemon started',
  );
  let closed = false;
  return {
    port: boundPort,
    host: addr.address,
    url,
    scheduler,
    server,
    signer,
    async close() {
      if (closed) return;
      closed = true;
      scheduler.stop();
      await server.close();
      for (const p of providers.values()) p.destroy?.();
      await signer.close();
      logger.info('credport daemon stopped');
    },
  };
}
