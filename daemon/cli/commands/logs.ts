/** `credport logs [-f]`: the daemon's log file, pretty-printed. */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { prettyLine } from '../../logging/pretty-line.js';
import { loadCliConfig } from '../shared.js';
import { colourAllowed } from '../../util/no-color.js';

const HELP = `Usage: credport logs [options]

Prints the daemon's log (from [daemon] log_file, including rotated files),
pretty-printed.

Options:
  -n, --lines N      how many lines at the end to show (default 100)
  -f, --follow       keep printing new lines as they are written (Ctrl-C stops)
  --json             print the raw JSON lines
  -c, --config PATH  config file
  -h, --help         show this help

Without log_file the daemon logs to stdout: under systemd read
'journalctl --user -u credport', under launchd ~/Library/Logs/credport/.`;

/** Old files are NAME.N.log, the highest N the most recent (older versions: the current one); then the current file. */
export function logFiles(logFile: string): string[] {
  const dir = dirname(logFile);
  const ext = extname(logFile) || '.log';
  const stem = basename(logFile, extname(logFile));
  if (!existsSync(dir)) return [];
  const numbered = readdirSync(dir)
    .map((f) => ({
      f,
      m: new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(?:[^.]+\\.)?(\\d+)${ext.replace('.', '\\.')}$`).exec(f),
    }))
    .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
    .map((x) => join(dir, x.f));
  if (existsSync(logFile) && statSync(logFile).isFile()) numbered.push(logFile);
  return numbered;
}

export const logsCommand: Command = {
  name: 'logs',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('logs', argv, {
      lines: { type: 'string', short: 'n' },
      follow: { type: 'boolean', short: 'f' },
      json: { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const n = values.lines === undefined ? 100 : Number(values.lines);
    if (!Number.isInteger(n) || n < 0) throw new CliError('--lines: expected a whole number', EXIT.usage);
    const cfg = loadCliConfig(values.config, io);
    if (!cfg.daemon.logFile) {
      throw new CliError(
        'this config has no [daemon] log_file: the daemon logs to its stdout',
        EXIT.usage,
        'systemd: journalctl --user -u credport; launchd: ~/Library/Logs/credport/',
      );
    }
    const files = logFiles(cfg.daemon.logFile);
    if (files.length === 0)
      throw new CliError(`no log files at ${cfg.daemon.logFile} yet`, EXIT.failure, 'has the daemon run with this config?');
    const style = { colour: io.isTty && colourAllowed(io.env), time: 'date' } as const;
    const pretty = (line: string) => prettyLine(line, style);
    const show = (line: string) => {
      if (!line.trim()) return;
      io.stdout(values.json ? `${line}\n` : pretty(line));
    };
    const lines = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.trim()),
    );
    for (const l of lines.slice(Math.max(0, lines.length - n))) show(l);
    if (!values.follow) return EXIT.ok;

    // Follow: poll the newest file for growth, and switch when a rotation makes a newer one.
    let current = files[files.length - 1] ?? cfg.daemon.logFile;
    let offset = statSync(current).size;
    let partial = '';
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        try {
          follow();
        } catch {
          // Rotation can remove a file between listing and reading it; the next tick sees the new one.
        }
      }, 250);
      function follow(): void {
        const newest = logFiles(cfg.daemon.logFile!).at(-1);
        if (newest && newest !== current) {
          current = newest;
          offset = 0;
        }
        const size = statSync(current).size;
        if (size < offset) offset = 0; // truncated
        if (size === offset) return;
        const fd = openSync(current, 'r');
        const buf = Buffer.alloc(size - offset);
        readSync(fd, buf, 0, buf.length, offset);
        closeSync(fd);
        offset = size;
        const text = partial + buf.toString('utf8');
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        for (const p of parts) show(p);
      }
      const stop = () => {
        clearInterval(timer);
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return EXIT.ok;
  },
};
