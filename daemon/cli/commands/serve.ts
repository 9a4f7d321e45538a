/** `credport serve`: run the daemon in the foreground (launchd and systemd run exactly this). */
import { ConfigError, loadConfig, type ResolvedConfig } from '../../config/load.js';
import type { RunningDaemon } from '../../daemon.js';
import { createLogger, type Logger } from '../../logging/logger.js';
import { acquireInstanceLock, AlreadyRunningError, type InstanceLock } from '../../service/instance-lock.js';
import { clientView } from '../../service/client-view.js';
import { removeRuntimeFile, runtimeFilePath, writeRuntimeFile, type RuntimeInfo } from '../../service/runtime-file.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import type { CliIo } from '../io.js';
import { loadCliConfig, parseListenFlag } from '../shared.js';

const HELP = `Usage: credport serve [options]

Runs the daemon in the foreground: fetches credentials for every profile,
refreshes them ahead of expiry and serves them on loopback:
  GET  /v1/credentials[/PROFILE]     ECS container-credentials endpoint
  PUT  /latest/api/token, GET /latest/meta-data/...   IMDSv2-compatible
  GET  /health                       state of every profile (no secrets)
  GET  /metrics                      Prometheus metrics

Options:
  --listen HOST:PORT   override [daemon] listen (loopback only)
  --log-level LEVEL    fatal, error, warn, info, debug, trace
  -c, --config PATH    config file
  -h, --help           show this help

Signals: SIGTERM/SIGINT finish in-flight requests and exit 0; SIGHUP (or
'credport reload') re-reads the config: a bad config is rejected and the
running one kept; profiles whose definition changed are refreshed.`;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
/** In-flight requests get this long to finish on shutdown before the process exits anyway. */
const SHUTDOWN_BOUND_MS = 10_000;

const CONFIG_ERRORS = new Set([
  'InsecureFileError',
  'UnsafeFileError',
  'SecretFileNotFoundError',
  'KeyFileError',
  'TokenFileError',
  'KeyBackendError',
]);

/** The runtime file, or a warning: without it the CLI falls back to the config's listen address and its full path. */
function publishRuntime(path: string, info: RuntimeInfo, log: Logger): void {
  try {
    writeRuntimeFile(path, info);
  } catch (err) {
    log.warn({ file: path, err: (err as Error).message }, 'cannot write the runtime file');
  }
}

/** `published`: the runtime file as last written, whose client view follows each accepted config. */
async function onReload(
  daemon: RunningDaemon,
  file: string,
  io: CliIo,
  log: Logger,
  stopping: () => boolean,
  published: { path: string; info: RuntimeInfo },
): Promise<void> {
  let next: ResolvedConfig;
  try {
    next = loadConfig(file, io.env);
    // A reload may add a profile type whose provider module is not loaded yet.
    await daemon.prepare(next);
    // The stop signal may have come while the module loaded: no profiles start on a closing daemon.
    if (stopping()) return;
    daemon.reload(next);
  } catch (err) {
    daemon.reloadFailed(err instanceof ConfigError ? err.message : `${(err as Error).name}: ${(err as Error).message}`);
    log.debug('reload failed');
    return;
  }
  // A view of the old bytes would only be ignored (its digest no longer matches), but the new one
  // keeps the CLI on its slim path.
  const { client: _old, ...rest } = published.info;
  const client = clientView(next);
  published.info = client ? { ...rest, client } : rest;
  publishRuntime(published.path, published.info, log);
}

export const serveCommand: Command = {
  name: 'serve',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('serve', argv, { listen: { type: 'string' }, 'log-level': { type: 'string' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    // SIGHUP's default action kills the process: the handler goes in before anything slow
    // (config, key, listen), and a reload asked for before the daemon is ready runs once it is.
    let reloadPending = false;
    let onHupReady: (() => void) | undefined;
    const onHup = () => {
      if (onHupReady) onHupReady();
      else reloadPending = true;
    };
    // Never removed: a SIGHUP during shutdown must not turn a clean exit into 129.
    process.on('SIGHUP', onHup);
    const listen = parseListenFlag(values.listen);
    const level = values['log-level'];
    if (level !== undefined && !LEVELS.has(level)) throw new CliError(`--log-level: expected one of ${[...LEVELS].join(', ')}`, EXIT.usage);
    const cfg = loadCliConfig(values.config, io);
    let lock: InstanceLock;
    try {
      lock = acquireInstanceLock(cfg.daemon.lockFile);
    } catch (err) {
      if (err instanceof AlreadyRunningError) throw new CliError(err.message, EXIT.failure);
      throw err;
    }
    const logger = createLogger({
      level: level ?? cfg.daemon.log_level,
      ...(cfg.daemon.logFile ? { file: cfg.daemon.logFile, rotate: { size: cfg.daemon.log_max_size, keep: cfg.daemon.log_files } } : {}),
      pretty: io.isTty && !cfg.daemon.logFile,
    });
    // Loaded here, after the SIGHUP handler: the server's modules are the slow part of start-up.
    const { startDaemon, PortInUseError } = await import('../../daemon.js');
    const runtimeFile = runtimeFilePath(cfg.daemon.lockFile);
    const client = clientView(cfg);
    let bound: { path: string; info: RuntimeInfo } | undefined;
    let stopSignal: Promise<string> | undefined;
    // Published as soon as the sockets are bound (a client that can connect can find the daemon); the
    // requests that come before the start is over wait for it (server/held-requests.ts).
    const onBound = (where: { url: string; listen: string[] }) => {
      bound = {
        path: runtimeFile,
        info: {
          pid: process.pid,
          instance: lock.record.instance,
          url: where.url,
          listen: where.listen,
          config: cfg.file,
          tokenFile: cfg.daemon.tokenFile,
          startedAt: new Date().toISOString(),
          ...(client ? { client } : {}),
        },
      };
      publishRuntime(runtimeFile, bound.info, logger);
      // From here a stop signal waits for the start to end (a second at most, then fastify's load) and
      // stops cleanly, rather than leave the runtime file and the held requests behind.
      stopSignal = stopSignals();
    };
    let running: RunningDaemon;
    try {
      running = await startDaemon({ config: cfg, logger, onBound, ...(listen ? { listen } : {}) });
    } catch (err) {
      if (bound) removeRuntimeFile(runtimeFile, lock.record.instance);
      lock.release();
      logger.flush();
      if (err instanceof PortInUseError) throw new CliError(err.message, EXIT.failure);
      if (CONFIG_ERRORS.has((err as Error).name)) throw new CliError((err as Error).message, EXIT.config);
      throw err;
    }
    // startDaemon binds before it resolves, so onBound has run.
    const published = bound as { path: string; info: RuntimeInfo };
    const release = () => {
      removeRuntimeFile(runtimeFile, lock.record.instance);
      lock.release();
    };
    // One reload at a time, in the order the signals came: each may wait for a module to load.
    let stopping = false;
    let reloads = Promise.resolve();
    onHupReady = () => {
      reloads = reloads
        .then(() => onReload(running, cfg.file, io, logger, () => stopping, published))
        // onReload reports what it expects; anything else must not become an unhandled rejection,
        // which would end a daemon that is still serving the config it had.
        .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'reload failed unexpectedly'));
    };
    if (reloadPending) {
      reloadPending = false;
      logger.info('applying a reload requested during start-up');
      onHupReady();
    }
    // From the stop signal on, a SIGHUP is ignored: a reload must not start profiles on a closing daemon.
    return runUntilStopped(running, stopSignal ?? stopSignals(), logger, release, () => {
      stopping = true;
      onHupReady = () => undefined;
    });
  },
};

/** The first SIGINT or SIGTERM from now on. */
function stopSignals(): Promise<string> {
  return new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

async function runUntilStopped(
  daemon: RunningDaemon,
  stopSignal: Promise<string>,
  logger: Logger,
  release: () => void,
  stopping: () => void,
): Promise<number> {
  const signal = await stopSignal;
  stopping();
  logger.info({ signal }, 'stopping');
  const bound = setTimeout(() => {
    logger.warn('in-flight requests did not finish in time; exiting');
    release();
    process.exit(0);
  }, SHUTDOWN_BOUND_MS);
  bound.unref();
  await daemon.close();
  clearTimeout(bound);
  release();
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  return EXIT.ok;
}
