/**
 * One pino JSON line made readable for a terminal: `[time] LEVEL: message`, then the other fields, one
 * per indented line. It runs in the writing thread (no worker, no extra dependency), and it removes
 * control characters from everything it prints: log lines carry text that upstreams chose (error
 * messages), and an escape sequence in them must not reach the user's terminal as a command.
 */

const LEVELS: Readonly<Record<number, { name: string; colour: string }>> = {
  10: { name: 'TRACE', colour: '\x1b[90m' },
  20: { name: 'DEBUG', colour: '\x1b[34m' },
  30: { name: 'INFO', colour: '\x1b[32m' },
  40: { name: 'WARN', colour: '\x1b[33m' },
  50: { name: 'ERROR', colour: '\x1b[31m' },
  60: { name: 'FATAL', colour: '\x1b[41m' },
};
const RESET = '\x1b[0m';
const DIM = '\x1b[90m';

/** Fields shown in the first line, or not at all. */
const HEADER_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

export interface PrettyOptions {
  colour: boolean;
  /** "clock": local HH:MM:SS.mmm (a live terminal); "date": local YYYY-MM-DD HH:MM:SS (reading old logs). */
  time: 'clock' | 'date';
}

// C0 controls except tab and newline, DEL, and the C1 range (which some terminals honour as CSI).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function stripControl(text: string): string {
  return text.replace(CONTROL, '\uFFFD');
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function formatTime(value: unknown, style: PrettyOptions['time']): string {
  const d = new Date(typeof value === 'number' || typeof value === 'string' ? value : Number.NaN);
  if (Number.isNaN(d.getTime())) return '-';
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (style === 'clock') return `${clock}.${pad(d.getMilliseconds(), 3)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
}

function indent(text: string): string {
  return text.replace(/\n/g, '\n    ');
}

function fieldValue(key: string, value: unknown): string {
  // An error's stack reads better as the lines it is than as one JSON string.
  if ((key === 'err' || key === 'error') && value && typeof value === 'object' && 'stack' in value) {
    const stack = (value as { stack?: unknown }).stack;
    if (typeof stack === 'string') return indent(stack);
  }
  return indent(JSON.stringify(value, null, 2) ?? String(value));
}

/** Formats one line of pino JSON; a line that is not a JSON object is printed as it is (cleaned). */
export function prettyLine(line: string, options: PrettyOptions): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return `${stripControl(line.replace(/\n$/, ''))}\n`;
  }
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return `${stripControl(line.replace(/\n$/, ''))}\n`;
  const record = entry as Record<string, unknown>;
  const level = LEVELS[Number(record.level)] ?? { name: `L${String(record.level)}`, colour: '' };
  const time = formatTime(record.time, options.time);
  const msg = typeof record.msg === 'string' ? record.msg : record.msg === undefined ? '' : JSON.stringify(record.msg);
  // Every piece of the record is cleaned before the colour codes of our own are added around it.
  const levelText = options.colour && level.colour ? `${level.colour}${level.name}${RESET}` : level.name;
  let out = `[${time}] ${levelText}: ${stripControl(indent(msg))}\n`;
  for (const [key, value] of Object.entries(record)) {
    if (HEADER_FIELDS.has(key)) continue;
    const name = options.colour ? `${DIM}${stripControl(key)}${RESET}` : stripControl(key);
    out += `    ${name}: ${stripControl(fieldValue(key, value))}\n`;
  }
  return out;
}
