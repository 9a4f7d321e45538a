/**
 * Generates docs/config-reference.md from the config schema, so the reference
 * cannot drift from what the daemon accepts. `npm run gen-docs` rewrites it;
 * test/config-docs.test.ts fails when it is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { CONFIG_SECTIONS } from '../daemon/config/schema.js';

interface Prop {
  type?: string;
  const?: unknown;
  anyOf?: Array<{ const?: unknown }>;
  default?: unknown;
  description?: string;
  expect?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  pattern?: string;
  properties?: Record<string, Prop>;
  required?: string[];
}

function typeOf(p: Prop): string {
  if (p.const !== undefined) return `\`${JSON.stringify(p.const)}\``;
  if (p.anyOf) return p.anyOf.map((a) => `\`${JSON.stringify(a.const)}\``).join(' \\| ');
  let t = p.type ?? 'any';
  const bounds: string[] = [];
  if (p.minimum !== undefined) bounds.push(`≥ ${p.minimum}`);
  if (p.exclusiveMinimum !== undefined) bounds.push(`> ${p.exclusiveMinimum}`);
  if (p.maximum !== undefined) bounds.push(`≤ ${p.maximum}`);
  if (bounds.length) t += ` (${bounds.join(', ')})`;
  return t;
}

function renderTable(out: string[], schema: { properties: Record<string, Prop>; required?: string[] }): void {
  out.push('| key | type | default | description |', '| --- | --- | --- | --- |');
  for (const [key, p] of Object.entries(schema.properties)) {
    const required = schema.required?.includes(key) && p.default === undefined;
    const def = p.default !== undefined ? `\`${JSON.stringify(p.default)}\`` : required ? '**required**' : '—';
    const desc = [p.description ?? '', p.expect && !p.anyOf && p.const === undefined ? `Expected: ${p.expect}.` : '']
      .filter(Boolean)
      .join(' ');
    out.push(`| \`${key}\` | ${p.properties ? 'table' : typeOf(p)} | ${def} | ${desc.replace(/\|/g, '\\|')} |`);
  }
}

export function renderConfigReference(): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from daemon/config/schema.ts by `npm run gen-docs`; do not edit by hand. -->',
    '',
    'credport reads one TOML file: `--config PATH`, else `$CREDPORT_CONFIG`, else',
    '`$XDG_CONFIG_HOME/credport/config.toml` (`~/.config/credport/config.toml`). Unknown keys and wrong',
    'types are errors that name the file, the key and what was expected. Paths may start with `~` or use',
    '`$HOME`, `$XDG_STATE_HOME` and `$XDG_CONFIG_HOME`; relative paths are relative to the config file.',
    '',
  ];
  for (const section of CONFIG_SECTIONS) {
    const schema = section.schema as TSchema & { properties: Record<string, Prop>; required?: string[] };
    out.push(`## \`[${section.table}]\``, '', section.summary, '');
    renderTable(out, schema);
    out.push('');
    // A nested table (a profile's [profiles.NAME.renewal]) gets its own section right after.
    for (const [key, p] of Object.entries(schema.properties)) {
      if (!p.properties) continue;
      out.push(`### \`[${section.table.split('`')[0]}.${key}]\``, '');
      renderTable(out, { properties: p.properties, ...(p.required ? { required: p.required } : {}) });
      out.push('');
    }
  }
  out.push(
    '## Example',
    '',
    '```toml',
    '[daemon]',
    'listen = "127.0.0.1:80"',
    '',
    '[key]',
    'backend = "file"',
    'path = "~/.local/state/credport/device-key.pem"',
    '',
    '[oidc]',
    'issuer = "https://d111111abcdef8.cloudfront.net"',
    '',
    '[profiles.default]',
    'type = "aws-oidc"',
    'role_arn = "arn:aws:iam::111122223333:role/dev"',
    'region = "us-east-1"',
    '',
    '[profiles.prod-readonly]',
    'type = "aws-oidc"',
    'role_arn = "arn:aws:iam::444455556666:role/readonly"',
    'duration_seconds = 7200',
    '```',
    '',
  );
  return out.join('\n');
}

export const REFERENCE_PATH = fileURLToPath(new URL('../../docs/config-reference.md', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(REFERENCE_PATH, renderConfigReference());
  process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
}
