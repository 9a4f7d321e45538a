/** `credport serve`: run the daemon in the foreground (launchd and systemd run exactly this). */
import { startDaemon, PortInUseError } from '../../daemon.js';
import { createLogger } from '../../logging/logger.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { loadCliConfig, parseListenFlag } from '../shared.js';

const HELP = `Usage: credport serve [options]

Runs the daemon in the foreground: fetches credentials for every profile,
refreshes them ahead of expiry and serves them on loopback:
  GET  /v1/credentials[/PROFILE]     ECS container-credentials endpoint
  PUT  /latest/api/token, GET /latest/meta-data/...   IMDSv2-compatible
  GET  /health                       state of every profile (no secrets)

Options:
  --listen HOST:PORT   override [daemon] listen (loopback only)
  --log-level LEVEL    fatal, error, warn, info, debug, trace
  -c, --config PATH    config file
  -h, --help           show this help

Stops cleanly on SIGINT/SIGTERM.`;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);

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
    const logger = createLogger({
      level: level ?? cfg.daemon.log_level,
      ...(cfg.daemon.logFile ? { file: cfg.daemon.logFile } : {}),
      pretty: io.isTty,
    });
    let daemon;
    try {
      daemon = await startDaemon({ config: cfg, logger, ...(listen ? { listen } : {}) });
    } catch (err) {
      if (err instanceof PortInUseError) throw new CliError(err.message, EXIT.failure);
      const name = (err as Error).name;
      if (['InsecureFileError', 'SecretFileNotFoundError', 'KeyFileError', 'TokenFileError'].includes(name)) {
        throw new CliError((err as Error).message, EXIT.config);
      }
      throw err;
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        resolve();
      };
      const onInt = () => stop('SIGINT');
      const onTerm = () => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
    await daemon.close();
    logger.flush();
    return EXIT.ok;
  },
};
