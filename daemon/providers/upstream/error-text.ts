/**
 * Text that came from an upstream (an error code, an error message) before it reaches logs, /health,
 * 503 bodies, `credport status` or a metrics label. An upstream is untrusted: it may answer with ten
 * thousand characters, terminal escapes, newlines that forge log lines, or echo our own request back,
 * JWT and session token included. ProviderError runs every code and message through here, so no path
 * from an upstream can skip it.
 */

export const MAX_CODE_LENGTH = 64;
export const MAX_MESSAGE_LENGTH = 300;
/** What a code becomes when it is not a plain identifier. */
export const UNREADABLE_CODE = 'UpstreamError';

const CODE = /^[A-Za-z0-9._-]+$/;
// CSI and other escape sequences first (so their parameters do not survive as text), then any C0/C1
// control, DEL, and the bidi overrides that reorder what a terminal shows.
const ESCAPES = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])/g;
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// A JWT (or any JOSE object): base64url of a JSON object starts with eyJ; keep the dots in the match.
const JWT = /eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,4}/g;
// Long base64/base64url/hex runs: secret access keys (40 chars), session tokens, signatures.
const LONG_RUN = /[A-Za-z0-9+/=_-]{32,}/g;
const REDACTED = '[redacted]';

const count = (run: string, re: RegExp): number => run.match(re)?.length ?? 0;

/**
 * A run that looks random rather than like a path or an ARN part: long hex, or base64 with capitals
 * and digits throughout (a secret key is about half capitals and digits; a temp directory's random
 * suffix in an otherwise lower-case path is far less).
 */
function tokenShaped(run: string): boolean {
  if (/^[0-9a-f]{32,}$/i.test(run) && /[0-9]/.test(run) && /[a-f]/i.test(run)) return true;
  const upper = count(run, /[A-Z]/g);
  const digits = count(run, /[0-9]/g);
  return upper >= 3 && count(run, /[a-z]/g) >= 3 && (upper + digits) / run.length >= 0.25;
}

/** A code fit for /health and metrics: a plain identifier of at most 64 characters, else UpstreamError. */
export function sanitizeCode(raw: unknown): string {
  const code = typeof raw === 'string' ? raw.trim() : '';
  return code.length > 0 && code.length <= MAX_CODE_LENGTH && CODE.test(code) ? code : UNREADABLE_CODE;
}

/** One line of plain text, bounded, with anything token-shaped replaced by [redacted]. */
export function sanitizeMessage(raw: unknown): string {
  let text = typeof raw === 'string' ? raw : String(raw);
  // Bound the work before the regular expressions run: a 400 MB message is cut to a few KiB first.
  if (text.length > MAX_MESSAGE_LENGTH * 8) text = text.slice(0, MAX_MESSAGE_LENGTH * 8);
  text = text.replace(ESCAPES, ' ').replace(CONTROLS, ' ');
  text = text.replace(JWT, REDACTED).replace(LONG_RUN, (run) => (tokenShaped(run) ? REDACTED : run));
  text = text.replace(/\s+/g, ' ').trim();
  if (text.length > MAX_MESSAGE_LENGTH) {
    // Cut, then make sure the cut did not leave the start of a token whose tail was what made it a token.
    text = `${text.slice(0, MAX_MESSAGE_LENGTH - 1).replace(/[A-Za-z0-9+/=_-]{16,}$/, REDACTED)}…`;
  }
  return text;
}
