/**
 * pino, configured so that a secret cannot reach a log line by accident: the
 * code never logs credentials or tokens, and redaction catches the field names
 * they would travel under if it ever tried.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';
import { colourAllowed } from '../util/no-color.js';

export type { Logger } from 'pino';

export const REDACT_PATHS = [
  'token',
  'jwt',
  'webIdentityToken',
  'WebIdentityToken',
  'authorization',
  'Authorization',
  'secretAccessKey',
  'SecretAccessKey',
  'sessionToken',
  'SessionToken',
  'Token',
  'pin',
  'credentials',
  'Credentials',
  '*.token',
  '*.jwt',
  '*.authorization',
  '*.Authorization',
  '*.secretAccessKey',
  '*.SecretAccessKey',
  '*.sessionToken',
  '*.SessionToken',
  '*.Token',
  '*.credentials',
  '*.pin',
  'req.headers.authorization',
  'req.headers["x-aws-ec2-metadata-token"]',
  'headers.authorization',
  'headers["x-aws-ec2-metadata-token"]',
];

export interface LoggerSetup {
  level: string;
  file?: string;
  /** Size-based rotation of `file` (pino-roll): e.g. "10m", and how many old files to keep. */
  rotate?: { size: string; keep: number };
  /** Pretty output when writing to a terminal; JSON otherwise. */
  pretty?: boolean;
  destination?: DestinationStream;
  /** 1 (stdout, default) or 2 (stderr) when writing to the terminal. */
  fd?: 1 | 2;
}

export function createLogger(setup: LoggerSetup): Logger {
  const options: LoggerOptions = {
    level: setup.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (setup.destination) return pino(options, setup.destination);
  if (setup.file && setup.rotate) {
    // The directory is made here, private, before the worker starts writing into it.
    mkdirSync(dirname(setup.file), { recursive: true, mode: 0o700 });
    const stream = pino.transport({
      target: 'pino-roll',
      options: { file: setup.file, size: setup.rotate.size, limit: { count: setup.rotate.keep }, mode: 0o600 },
    });
    // A full disk or a removed directory must cost log lines, never the daemon.
    stream.on('error', (err: Error) => process.stderr.write(`credport: cannot write the log file: ${err.message}\n`));
    return pino(options, stream);
  }
  if (setup.file) return pino(options, pino.destination({ dest: setup.file, mkdir: true, sync: false, mode: 0o600 }));
  if (setup.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: colourAllowed(process.env), translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', destination: setup.fd ?? 1 } } });
  }
  return pino(options, pino.destination({ dest: setup.fd ?? 1, sync: false }));
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
