/**
 * pino, configured so that a secret cannot reach a log line by accident: the
 * code never logs credentials or tokens, and redaction catches the field names
 * they would travel under if it ever tried.
 */
import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';
import { colourAllowed } from '../util/no-color.js';
import { prettyLine } from './pretty-line.js';
import { parseSize, RotatingFileWriter } from './rotating-file.js';

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
  /** Size-based rotation of `file`: e.g. "10m", and how many old files to keep (NAME.N.log, highest N newest). */
  rotate?: { size: string; keep: number };
  /** Pretty output when writing to a terminal; JSON otherwise. */
  pretty?: boolean;
  destination?: DestinationStream;
  /** Where log-file trouble is reported (stderr by default, at most a line a minute). */
  complain?: (line: string) => void;
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
  if (setup.file) {
    // In-process, not a worker-thread transport: a failed write loses lines, never the logger (see rotating-file.ts).
    const writer = new RotatingFileWriter({
      file: setup.file,
      maxBytes: setup.rotate ? parseSize(setup.rotate.size) : Number.POSITIVE_INFINITY,
      keep: setup.rotate?.keep ?? 0,
      ...(setup.complain ? { complain: setup.complain } : {}),
    });
    return pino(options, writer as unknown as DestinationStream);
  }
  if (setup.pretty) {
    // Formatted in this thread: a worker-thread transport would cost a thread, its heap and its wake-ups
    // for a few lines a minute.
    const out = pino.destination({ dest: setup.fd ?? 1, sync: false });
    const style = { colour: colourAllowed(process.env), time: 'clock' } as const;
    const pretty = { write: (line: string) => out.write(prettyLine(line, style)) };
    return pino(options, pretty as DestinationStream);
  }
  return pino(options, pino.destination({ dest: setup.fd ?? 1, sync: false }));
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
