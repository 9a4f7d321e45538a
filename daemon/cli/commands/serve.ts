/** `credport serve`: run the daemon in the foreground (launchd and systemd run exactly this). */
import { ConfigError, loadConfig } from '../../config/load.js';
import { startDaemon, PortInUseError, type RunningDaemon } from '../../daemon.js';
import { createLogger, type Logger } from '../../logging/logger.js';
import { acquireInstanceLock, AlreadyRunningError, type InstanceLock } from '../../service/instance-lock.js';
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

const CONFIG_ERRORS = new Set(['InsecureFileError', 'SecretFileNotFoundError', 'KeyFileError', 'TokenFileError', 'KeyBackendError']);

function onReload(daemon: RunningDaemon, file: string, io: CliIo, log: Logger): void {
  try {
    const next = loadConfig(file, io.env);
    daemon.reload(next);
  } catch (err) {
    daemon.reloadFailed(err instanceof ConfigError ? err.message : `${(err as Error).name}: ${(err as Error).message}`);
    log.debug('reload failed');
  }
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
    let daemon: RunningDaemon;
    try {
      daemon = await startDaemon({ config: cfg, logger, ...(listen ? { listen } : {}) });
    } catch (err) {
      lock.release();
      logger.flush();
      if (err instanceof PortInUseError) throw new CliError(err.message, EXIT.failure);
      if (CONFIG_ERRORS.has((err as Error).name)) throw new CliError((err as Error).message, EXIT.config);
      throw err;
    }
    const onHup = () => onReload(daemon, cfg.file, io, logger);
    process.on('SIGHUP', onHup);
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    process.off('SIGHUP', onHup);
    logger.info({ signal }, 'stopping');
    const bound = setTimeout(() => {
      logger.warn('in-flight requests did not finish in time; exiting');
      lock.release();
      process.exit(0);
    }, SHUTDOWN_BOUND_MS);
    bound.unref();
    await daemon.close();
    clearTimeout(bound);
    lock.release();
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    return EXIT.ok;
  },
};
