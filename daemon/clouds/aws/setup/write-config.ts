/**
 * Puts what the stacks produced (issuer URL, ARNs, the publish bucket) into the credport config file:
 * only the keys named change, every other line (comments, order, other tables) is kept. The result is
 * parsed and validated before the file is replaced atomically, so a file the editor cannot handle safely
 * is left as it was.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { CliError, EXIT } from '../../../cli/cli-error.js';
import { parseConfigText, resolveConfig } from '../../../config/load.js';
import type { Env } from '../../../config/paths.js';
import { writeFileAtomic } from '../../../util/secure-file.js';

export type TomlValue = string | number;

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function headerRe(table: string): RegExp {
  const parts = table.split('.').map((p) => `(?:${escapeRe(p)}|"${escapeRe(p)}")`);
  return new RegExp(`^\\s*\\[\\s*${parts.join('\\s*\\.\\s*')}\\s*\\]\\s*(?:#.*)?$`);
}

const tomlValue = (v: TomlValue): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/** The text with `table`'s keys set to `values`; the table is appended when absent. */
export function setTableKeys(text: string, table: string, values: Readonly<Record<string, TomlValue>>): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => headerRe(table).test(l));
  if (start < 0) {
    const body = Object.entries(values).map(([k, v]) => `${k} = ${tomlValue(v)}`);
    const sep = text.length === 0 || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n';
    return `${text}${sep}[${table}]\n${body.join('\n')}\n`;
  }
  let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
  if (end < 0) end = lines.length;
  for (const [key, value] of Object.entries(values)) {
    const keyRe = new RegExp(`^(\\s*)(?:${escapeRe(key)}|"${escapeRe(key)}")\\s*=`);
    const at = lines.findIndex((l, i) => i > start && i < end && keyRe.test(l));
    const line = `${key} = ${tomlValue(value)}`;
    if (at >= 0) {
      lines[at] = `${keyRe.exec(lines[at] ?? '')?.[1] ?? ''}${line}`;
    } else {
      let last = end - 1;
      while (last > start && (lines[last] ?? '').trim() === '') last--;
      lines.splice(last + 1, 0, line);
      end++;
    }
  }
  return lines.join('\n');
}

export interface ConfigEdit {
  table: string;
  values: Record<string, TomlValue>;
}

/** Applies the edits to the config file, or changes nothing and says why. */
export function writeConfig(file: string, edits: readonly ConfigEdit[], env: Env): string {
  let target: string;
  let original: string;
  let mode: number;
  try {
    target = realpathSync(file);
    original = readFileSync(target, 'utf8');
    mode = statSync(target).mode & 0o777;
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EXIT.config, "create it first with 'credport init'");
  }
  let text = original;
  for (const edit of edits) text = setTableKeys(text, edit.table, edit.values);
  try {
    const data = parseConfigText(target, text);
    resolveConfig(target, data, env);
    // The edit must say what was asked: a value that landed in another table (a dotted key) is refused.
    for (const edit of edits) {
      const table = edit.table.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], data);
      for (const [k, v] of Object.entries(edit.values)) {
        if ((table as Record<string, unknown> | undefined)?.[k] !== v) throw new Error(`[${edit.table}] ${k} did not take the new value`);
      }
    }
  } catch (err) {
    throw new CliError(
      `${file}: the edited config would not be valid (${(err as Error).message.split('\n')[0]}); nothing was changed`,
      EXIT.config,
      'set the values printed above by hand',
    );
  }
  writeFileAtomic(target, text, mode);
  return target;
}
