/**
 * Generates daemon/config/validators.generated.ts: the config schema's validators as ajv standalone
 * code, so that no command compiles a schema (about 200 ms) or loads the schema library at start.
 * The file is committed and a test fails when it is stale, like docs/config-reference.md.
 *
 * Not ajv's verbose mode: it copies the schema and the value into every error site, about a sixth of
 * the code, which V8 parses at every start. What validate.ts's messages need of the schema (a
 * subschema's `expect` phrase, a table's known keys) is a small table instead, each validator's
 * `annotations`, keyed by the schema path ajv puts in each error; the value it reads from the config
 * itself, at the instance path.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { escapeFragment } from 'ajv/dist/compile/util.js';
import standalone from 'ajv/dist/standalone/index.js';
import { ConfigSchema, KEY_SECTIONS, PROFILE_SECTIONS, RSA_KEY_SECTIONS } from '../daemon/config/schema.js';

/** The ajv options every generated validator is compiled with: every problem reported, defaults filled. */
function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, code: { source: true, esm: true } });
  // An annotation only: the human phrase validate.ts puts in an error, read from parentSchema.
  ajv.addKeyword({ keyword: 'expect', schemaType: 'string' });
  return ajv;
}

/**
 * The schema without its `description`s: they are for the docs, and a validator inlines its schema
 * (verbose errors carry parentSchema), so they would only make every command parse more.
 */
function withoutDescriptions(schema: unknown, inProperties = false): unknown {
  if (Array.isArray(schema)) return schema.map((s) => withoutDescriptions(s));
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'description' && !inProperties && typeof v === 'string') continue;
    out[k] = withoutDescriptions(v, k === 'properties' && !inProperties);
  }
  return out;
}

/** What validate.ts may say about one subschema: its `expect` phrase, the keys its table knows. */
export interface Annotation {
  expect?: string;
  keys?: string[];
}

/** Keywords whose value is a subschema, or a list or table of them, as ajv names them in a schema path. */
const ONE = ['additionalProperties', 'items', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'];
const LIST = ['anyOf', 'allOf', 'oneOf', 'prefixItems'];
const TABLE = ['properties', 'patternProperties'];

/** Each annotated subschema of `schema` by its schema path as ajv writes it in an error ('#/properties/x'). */
export function annotations(schema: unknown, path = '#', out: Record<string, Annotation> = {}): Record<string, Annotation> {
  if (!schema || typeof schema !== 'object') return out;
  const s = schema as Record<string, unknown>;
  const a: Annotation = {};
  if (typeof s.expect === 'string') a.expect = s.expect;
  if (s.properties && typeof s.properties === 'object') a.keys = Object.keys(s.properties);
  if (a.expect !== undefined || a.keys !== undefined) out[path] = a;
  for (const k of ONE) if (s[k] && typeof s[k] === 'object') annotations(s[k], `${path}/${k}`, out);
  for (const k of LIST) if (Array.isArray(s[k])) (s[k] as unknown[]).forEach((sub, i) => annotations(sub, `${path}/${k}/${i}`, out));
  for (const k of TABLE)
    if (s[k] && typeof s[k] === 'object')
      for (const [name, sub] of Object.entries(s[k] as Record<string, unknown>))
        annotations(sub, `${path}/${k}/${escapeFragment(name)}`, out);
  return out;
}

const exportName = (kind: string, name: string) => `${kind}_${name.replace(/[^A-Za-z0-9]/g, '_')}`;

export function renderValidators(): string {
  const ajv = newAjv();
  const refs: Record<string, string> = {};
  const notes: Record<string, Record<string, Annotation>> = {};
  const add = (name: string, id: string, schema: unknown) => {
    const bare = withoutDescriptions(schema) as object;
    ajv.addSchema(bare, id);
    refs[name] = id;
    notes[name] = annotations(bare);
  };
  add('config', 'config', ConfigSchema);
  for (const [backend, schema] of Object.entries(KEY_SECTIONS)) add(exportName('key', backend), `key:${backend}`, schema);
  for (const [backend, schema] of Object.entries(RSA_KEY_SECTIONS)) add(exportName('rsa_key', backend), `rsakey:${backend}`, schema);
  for (const [type, schema] of Object.entries(PROFILE_SECTIONS)) add(exportName('profile', type), `profile:${type}`, schema);
  const code = standalone
    .default(ajv, refs)
    .replaceAll('require("ajv/dist/runtime/ucs2length").default', 'ucs2length')
    .replaceAll('require("ajv/dist/runtime/equal").default', 'equal');
  const left = /require\([^)]*\)/.exec(code);
  if (left) throw new Error(`the generated validators need ${left[0]}: add it to daemon/config/validator-runtime.ts`);
  // A validator carries its own annotations, so that an error is read against the schema that made it.
  const annotate = Object.entries(notes)
    .map(([name, a]) => `${name}.annotations = ${JSON.stringify(a)};`)
    .join('\n');
  const table = (kind: string, names: string[]) => `{ ${names.map((n) => `${JSON.stringify(n)}: ${exportName(kind, n)}`).join(', ')} }`;
  return [
    '// @ts-nocheck',
    '/* eslint-disable */',
    '// Generated by scripts/gen-validators.ts from daemon/config/schema.ts (`npm run gen-docs`); do not edit.',
    // ajv's standalone code calls two runtime helpers of ajv's; ours (validator-runtime.ts) keep ajv unloaded.
    "import { equal, ucs2length } from './validator-runtime.js';",
    code.replace(/^"use strict";/, ''),
    annotate,
    `export const KEY_VALIDATORS = ${table('key', Object.keys(KEY_SECTIONS))};`,
    `export const RSA_KEY_VALIDATORS = ${table('rsa_key', Object.keys(RSA_KEY_SECTIONS))};`,
    `export const PROFILE_VALIDATORS = ${table('profile', Object.keys(PROFILE_SECTIONS))};`,
    '',
  ].join('\n');
}

export const VALIDATORS_PATH = fileURLToPath(new URL('../../daemon/config/validators.generated.ts', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(VALIDATORS_PATH, renderValidators());
  process.stdout.write(`wrote ${VALIDATORS_PATH}\n`);
}
