/**
 * Editing one section of an AWS shared config file (~/.aws/config) while keeping every other byte:
 * comments, blank lines, key order, other profiles, line endings. Pure text in, text out.
 */

/** The section header AWS tools read for a profile: `[default]` for default, else `[profile NAME]`. */
export function sectionHeader(profile: string): string {
  return profile === 'default' ? '[default]' : `[profile ${profile}]`;
}

/** Names the AWS CLI and SDKs parse without surprises inside `[profile NAME]`. */
export function isSafeProfileName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$/.test(name);
}

interface Line {
  text: string;
  /** The line's terminator as found ('\n', '\r\n' or '' for a last line without one). */
  eol: string;
}

function splitLines(text: string): Line[] {
  const out: Line[] = [];
  const re = /([^\r\n]*)(\r\n|\n|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    out.push({ text: m[1] ?? '', eol: m[2] ?? '' });
    if (m[0].length === 0) break;
  }
  return out;
}

function headerName(line: string): string | undefined {
  const m = /^\s*\[\s*([^\]]*?)\s*\]\s*(?:[#;].*)?$/.exec(line);
  if (!m) return undefined;
  const inner = (m[1] ?? '').replace(/\s+/g, ' ');
  return inner.startsWith('profile ') ? inner.slice('profile '.length) : inner;
}

const keyOf = (line: string): string | undefined => /^([A-Za-z0-9_.-]+)\s*=/.exec(line)?.[1];
const isContent = (line: string): boolean => line.trim() !== '' && !/^\s*[#;]/.test(line);

export interface SectionEdit {
  /** The whole new file text. */
  text: string;
  /** The edited section as it now reads (header to its last key), for --dry-run. */
  section: string;
  /** Keys found in the section that take precedence over or fight with what was written. */
  conflicts: string[];
  changed: boolean;
}

/**
 * Sets `values` in the profile's section: a key already there is replaced on its own line, a
 * missing one is added after the section's last key, a missing section is appended. Nothing else
 * changes. `conflicting` names keys to report if present (they are kept: they are the user's).
 */
export function upsertProfile(original: string, profile: string, values: Record<string, string>, conflicting: string[] = []): SectionEdit {
  const lines = splitLines(original);
  const eol = lines.find((l) => l.eol !== '')?.eol ?? '\n';
  // `[default]` and `[profile default]` both name the default profile; the first one found is edited.
  const start = lines.findIndex((l) => headerName(l.text) === profile);
  const conflicts: string[] = [];
  if (start < 0) {
    const prefix = original.length === 0 ? '' : original.endsWith('\n') ? eol : eol + eol;
    const added = [sectionHeader(profile), ...Object.entries(values).map(([k, v]) => `${k} = ${v}`)];
    const text = `${original}${prefix}${added.join(eol)}${eol}`;
    return { text, section: `${added.join('\n')}\n`, conflicts, changed: true };
  }
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    if (headerName(lines[i]!.text) !== undefined) {
      end = i;
      break;
    }
  }
  const out = lines.map((l) => ({ ...l }));
  const pending = new Map(Object.entries(values));
  let lastContent = start;
  for (let i = start + 1; i < end; i++) {
    const l = out[i]!;
    if (isContent(l.text)) lastContent = i;
    const key = keyOf(l.text);
    if (key === undefined) continue;
    if (pending.has(key)) {
      l.text = `${key} = ${pending.get(key)}`;
      pending.delete(key);
    } else if (conflicting.includes(key)) conflicts.push(key);
  }
  const inserted: Line[] = [...pending].map(([k, v]) => ({ text: `${k} = ${v}`, eol }));
  const at = out[lastContent]!;
  if (inserted.length > 0 && at.eol === '') at.eol = eol; // the section ended the file without a newline
  out.splice(lastContent + 1, 0, ...inserted);
  const text = out.map((l) => l.text + l.eol).join('');
  const sectionEnd = lastContent + 1 + inserted.length;
  const section = `${out
    .slice(start, sectionEnd)
    .map((l) => l.text)
    .join('\n')}\n`;
  return { text, section, conflicts, changed: text !== original };
}
