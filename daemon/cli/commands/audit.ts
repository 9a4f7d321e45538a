/** `credport audit`: who got which credentials, from the audit log. */
import { auditFiles } from '../../audit/audit-file.js';
import { formatDropped, formatEntry, isDroppedNote, parseLine, type AuditEntry, type DroppedNote } from '../../audit/record.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { followFiles, readWhole, type FollowPosition } from '../follow.js';
import type { CliIo } from '../io.js';
import { loadCliConfig } from '../shared.js';

const HELP = `Usage: credport audit [options]

Prints the audit log ([daemon] audit_file, rotated files included, oldest
first): every credential the daemon handed out, to which process.

Options:
  -f, --follow        keep printing new records as they are written (Ctrl-C stops)
  --profile P         only records of profile P
  --since DURATION    only records of the last DURATION: 30s, 15m, 2h, 7d
  --json              print JSON lines (time, profile, endpoint, accessKeyId,
                      expiration, uid, pid, exe, argv0; repeats and lastTime on
                      a summary line)
  -c, --config PATH   config file
  -h, --help          show this help

A process fetching the same credentials again and again gets one line for the
first fetch, then summary lines: REPEATS +N means N more identical fetches,
the last at TIME. "N not recorded" rows mean the daemon could not write that
many records (disk full or too slow).`;

const DURATION = /^([1-9][0-9]{0,8})([smhd])$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

function parseDuration(s: string): number {
  const m = DURATION.exec(s);
  if (!m) throw new CliError(`--since: expected a duration like 30s, 15m, 2h or 7d, got "${s}"`, EXIT.usage);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** Control characters shown, not obeyed: a program name is chosen by whoever runs the program. */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** 2026-11-28T02:12:20.123Z → 2026-11-28 02:12:20Z */
function shortTime(iso: string | null): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

const COLUMNS = [
  ['TIME', 20],
  ['PROFILE', 12],
  ['ENDPOINT', 8],
  ['ACCESS KEY ID', 20],
  ['EXPIRES', 20],
  ['UID', 6],
  ['PID', 7],
  ['REPEATS', 7],
  ['EXE', 0],
] as const;

function row(cells: string[]): string {
  return `${cells
    .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(COLUMNS[i]![1])))
    .join(' ')
    .trimEnd()}\n`;
}

function tableRow(r: AuditEntry | DroppedNote): string {
  if (isDroppedNote(r)) return `${shortTime(r.time)} -- ${r.dropped} handout(s) not recorded (audit log full or unwritable) --\n`;
  return row([
    shortTime(r.repeats !== undefined ? (r.lastTime ?? r.time) : r.time),
    printable(r.profile),
    printable(r.endpoint),
    printable(r.accessKeyId),
    shortTime(r.expiration),
    String(r.uid),
    r.pid === null ? '-' : String(r.pid),
    r.repeats !== undefined ? `+${r.repeats}` : '',
    r.exe === null ? '-' : printable(r.exe),
  ]);
}

interface Filter {
  profile: string | undefined;
  since: number | undefined;
}

function keep(r: AuditEntry | DroppedNote, f: Filter): boolean {
  const last = isDroppedNote(r) ? r.time : (r.lastTime ?? r.time);
  if (f.since !== undefined && Date.parse(last) < f.since) return false;
  if (f.profile !== undefined && !isDroppedNote(r) && r.profile !== f.profile) return false;
  return true;
}

/** Turns lines into output, counting the malformed ones. */
function printer(io: CliIo, json: boolean, filter: Filter) {
  let malformed = 0;
  return {
    line(l: string): void {
      const r = parseLine(l);
      if (!r) {
        malformed++;
        return;
      }
      if (!keep(r, filter)) return;
      // Re-serialised, not echoed: only the known fields, escaped for a terminal.
      io.stdout(json ? `${isDroppedNote(r) ? formatDropped(r) : formatEntry(r)}\n` : tableRow(r));
    },
    /** Reports malformed lines since the last call on stderr. */
    note(): void {
      if (malformed > 0) io.stderr(`credport: skipped ${malformed} malformed line(s) in the audit log\n`);
      malformed = 0;
    },
  };
}

export const auditCommand: Command = {
  name: 'audit',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('audit', argv, {
      follow: { type: 'boolean', short: 'f' },
      profile: { type: 'string' },
      since: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const filter: Filter = {
      profile: values.profile,
      since: values.since === undefined ? undefined : Date.now() - parseDuration(values.since),
    };
    const cfg = loadCliConfig(values.config, io);
    const file = cfg.daemon.auditFile;
    if (!file)
      throw new CliError('audit log is off in this config ([daemon] audit_file = "off")', EXIT.config, 'remove that line to turn it on');

    const out = printer(io, Boolean(values.json), filter);
    const files = auditFiles(file);
    if (files.length === 0 && !values.follow) {
      io.stderr(`credport: no audit log at ${file} yet (nothing handed out since it was configured)\n`);
      return EXIT.ok;
    }
    if (!values.json) io.stdout(row(COLUMNS.map(([h]) => h)));
    let position: FollowPosition | undefined;
    for (const f of files) {
      const read = readWhole(f);
      if (!read) continue;
      for (const l of read.text.split('\n')) if (l.trim()) out.line(l);
      position = read.position;
    }
    out.note();
    if (!values.follow) return EXIT.ok;
    if (files.length === 0) io.stderr(`credport: no audit log at ${file} yet; waiting for it\n`);
    await followFiles({
      list: () => auditFiles(file),
      from: position,
      onLine: (l) => {
        out.line(l);
        out.note();
      },
    });
    return EXIT.ok;
  },
};
