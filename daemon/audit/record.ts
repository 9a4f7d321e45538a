/**
 * One audit record: what was handed out to whom, as the JSON line the audit
 * file holds. The line carries public identifiers only; there is no field a
 * secret could travel in, so none can be written by mistake.
 */

/** A credential handed out by an endpoint, as the server reports it. */
export interface HandoutEvent {
  time: Date;
  profile: string;
  /** 'ecs' | 'imds' | 'auth' | later ones */
  endpoint: string;
  /**
   * The credential's public id: AWS's access key id, or for a bearer token (Google) `sha256:` and a
   * 16-hex prefix of its hash. Never the secret, the session token or the token itself.
   */
  accessKeyId: string;
  expiration: Date;
  uid: number;
  pid: number | null;
  exe: string | null;
  argv0: string | null;
}

/** A handout line as stored: the event's fields, plus the repeat summary on a summary line. */
export interface AuditEntry {
  time: string;
  profile: string;
  endpoint: string;
  accessKeyId: string;
  expiration: string | null;
  uid: number;
  pid: number | null;
  exe: string | null;
  argv0: string | null;
  /** On a summary line: how many more identical handouts followed, from `time` to `lastTime`. */
  repeats?: number;
  lastTime?: string;
}

/** Written when lines could not be (queue full, disk error): how many handouts have no line. */
export interface DroppedNote {
  time: string;
  dropped: number;
}

/** An AWS access key id, or the sha256: prefix that names a bearer token (Google) without revealing it. */
export const ACCESS_KEY_ID = /^(?:[A-Z0-9]{16,128}|sha256:[0-9a-f]{16})$/;

/** Bounds on text from the peer's process (argv[0] is whatever the program wrote there). */
const MAX_TEXT = 1024;
const MAX_NAME = 256;

function text(v: unknown, max: number): string {
  const s = typeof v === 'string' ? v : String(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function optionalText(v: unknown, max: number): string | null {
  return v === null || v === undefined ? null : text(v, max);
}

function iso(d: unknown): string | null {
  return d instanceof Date && Number.isFinite(d.getTime()) ? d.toISOString() : null;
}

function int(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : null;
}

/** The stored form of an event: fields checked and bounded, an unexpected access key id stored as "invalid". */
export function toEntry(e: HandoutEvent, now: number): AuditEntry {
  return {
    time: iso(e.time) ?? new Date(now).toISOString(),
    profile: text(e.profile, MAX_NAME),
    endpoint: text(e.endpoint, MAX_NAME),
    accessKeyId: typeof e.accessKeyId === 'string' && ACCESS_KEY_ID.test(e.accessKeyId) ? e.accessKeyId : 'invalid',
    expiration: iso(e.expiration),
    uid: int(e.uid) ?? -1,
    pid: int(e.pid),
    exe: optionalText(e.exe, MAX_TEXT),
    argv0: optionalText(e.argv0, MAX_TEXT),
  };
}

/**
 * JSON with the characters a terminal may act on escaped too: JSON.stringify
 * leaves DEL, the C1 controls (U+009B is a CSI) and the Unicode line
 * separators raw, and a program name is chosen by whoever runs the program.
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The line for an entry, fields in a fixed order, nothing else. */
export function formatEntry(e: AuditEntry): string {
  const out: AuditEntry = {
    time: e.time,
    profile: e.profile,
    endpoint: e.endpoint,
    accessKeyId: e.accessKeyId,
    expiration: e.expiration,
    uid: e.uid,
    pid: e.pid,
    exe: e.exe,
    argv0: e.argv0,
  };
  if (e.repeats !== undefined) {
    out.repeats = e.repeats;
    out.lastTime = e.lastTime ?? e.time;
  }
  return safeJson(out);
}

export function formatDropped(n: DroppedNote): string {
  return safeJson({ time: n.time, dropped: n.dropped });
}

const isText = (v: unknown): v is string => typeof v === 'string';
const isTextOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isIntOrNull = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isSafeInteger(v));
const isTime = (v: unknown): v is string => typeof v === 'string' && Number.isFinite(Date.parse(v));

/** Parses one line of an audit file; undefined for anything that is not a well-formed record. */
export function parseLine(line: string): AuditEntry | DroppedNote | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!isTime(o.time)) return undefined;
  if ('dropped' in o) {
    return typeof o.dropped === 'number' && Number.isSafeInteger(o.dropped) && o.dropped > 0
      ? { time: o.time, dropped: o.dropped }
      : undefined;
  }
  if (!isText(o.profile) || !isText(o.endpoint) || !isText(o.accessKeyId)) return undefined;
  if (!(o.expiration === null || isTime(o.expiration))) return undefined;
  if (typeof o.uid !== 'number' || !Number.isSafeInteger(o.uid) || !isIntOrNull(o.pid)) return undefined;
  if (!isTextOrNull(o.exe) || !isTextOrNull(o.argv0)) return undefined;
  const entry: AuditEntry = {
    time: o.time,
    profile: o.profile,
    endpoint: o.endpoint,
    accessKeyId: o.accessKeyId,
    expiration: o.expiration,
    uid: o.uid,
    pid: o.pid,
    exe: o.exe,
    argv0: o.argv0,
  };
  if (o.repeats !== undefined) {
    if (typeof o.repeats !== 'number' || !Number.isSafeInteger(o.repeats) || o.repeats < 1 || !isTime(o.lastTime)) return undefined;
    entry.repeats = o.repeats;
    entry.lastTime = o.lastTime;
  }
  return entry;
}

export function isDroppedNote(r: AuditEntry | DroppedNote): r is DroppedNote {
  return 'dropped' in r;
}
