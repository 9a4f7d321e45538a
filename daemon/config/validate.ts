/**
 * Schema validation with errors a person can act on: each names the file, the
 * key (as it is written in TOML) and what was expected.
 */
import { closest } from '../util/suggest.js';
import type { ErrorObject } from 'ajv';
import type { Config, KeyConfig } from './schema.js';
import * as generated from './validators.generated.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(problems.length === 1 ? `${file}: ${problems[0]}` : `${file}:\n  ${problems.join('\n  ')}`);
  }
}

/** What a message may say of the subschema an error came from (scripts/gen-validators.ts). */
interface Annotation {
  expect?: string;
  keys?: string[];
}

/** An ajv validator: true or false, with the errors of the last call, and its schema's annotations. */
interface Validator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
  annotations?: Record<string, Annotation>;
}

/** An ajv error, its instance path from the config's top, with what the message needs of schema and value. */
interface Problem {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  /** The annotation of the subschema whose keyword failed (ajv's parentSchema). */
  parent: Annotation | undefined;
  /** The value at instancePath. */
  data: unknown;
}

// Compiled at build time (scripts/gen-validators.ts): no schema compiler or schema library at start.
const validateSchema = generated.config as Validator;
const validateKey = generated.KEY_VALIDATORS as Record<KeyConfig['backend'], Validator>;
const validateRsaKey = generated.RSA_KEY_VALIDATORS as Record<string, Validator>;
const validateProfile = generated.PROFILE_VALIDATORS as Record<string, Validator | undefined>;

/** The keys of a JSON pointer: /profiles/a~1b -> ['profiles', 'a/b'] */
function pointerKeys(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value at an instance path, or undefined. */
function valueAt(root: unknown, instancePath: string): unknown {
  let v = root;
  for (const k of pointerKeys(instancePath)) {
    if (!v || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** Reads `v`'s errors as problems: instance paths under `prefix`, the schema's annotation of each. */
function problemsOf(v: Validator, prefix: string, root: unknown): Problem[] {
  return (v.errors ?? []).map((e) => {
    const instancePath = `${prefix}${e.instancePath}`;
    // ajv's schema path names the failed keyword last; the subschema that holds it is the rest.
    const parent = v.annotations?.[e.schemaPath.slice(0, e.schemaPath.lastIndexOf('/'))];
    const p: Problem = {
      keyword: e.keyword,
      instancePath,
      params: e.params as Record<string, unknown>,
      parent,
      data: valueAt(root, instancePath),
    };
    if (e.message !== undefined) p.message = e.message;
    return p;
  });
}

/** TOML key path for an ajv instance path: /profiles/dev/role_arn -> profiles.dev.role_arn */
function keyPath(instancePath: string, extra?: string): string {
  const parts = pointerKeys(instancePath);
  if (extra !== undefined) parts.push(extra);
  return parts.map((p) => (/^[A-Za-z0-9_-]+$/.test(p) ? p : JSON.stringify(p))).join('.') || '(top level)';
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a table';
  if (typeof v === 'string') return `"${v.length > 60 ? `${v.slice(0, 57)}...` : v}"`;
  return `${typeof v} ${String(v)}`;
}

function expectation(err: Problem): string {
  if (err.parent?.expect) return err.parent.expect;
  const p = err.params;
  switch (err.keyword) {
    case 'type':
      return `a value of type ${String(p.type)}`;
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum':
    case 'exclusiveMaximum':
      return `a number ${String(p.comparison)} ${String(p.limit)}`;
    case 'minLength':
      return 'a non-empty string';
    case 'maxLength':
      return `at most ${String(p.limit)} characters`;
    default:
      return err.message ?? 'a valid value';
  }
}

function formatError(err: Problem): string {
  const p = err.params;
  if (err.keyword === 'additionalProperties' && err.instancePath === '/profiles') {
    return `${keyPath(err.instancePath, String(p.additionalProperty))}: invalid profile name; use letters, digits and _ . - (up to 64, starting with a letter or digit)`;
  }
  if (err.keyword === 'additionalProperties') {
    const known = err.parent?.keys ?? [];
    const near = closest(String(p.additionalProperty), known);
    return `${keyPath(err.instancePath, String(p.additionalProperty))}: unknown key${near ? ` (did you mean ${near}?)` : ''}`;
  }
  if (err.keyword === 'required') {
    return `${keyPath(err.instancePath, String(p.missingProperty))}: missing (required)`;
  }
  return `${keyPath(err.instancePath)}: expected ${expectation(err)}, got ${describeValue(err.data)}`;
}

/** A config from before Secure Enclave keys left the keychain: the old key cannot be carried over. */
const SECURE_ENCLAVE_TAG_GONE =
  'key.tag: Secure Enclave keys are no longer kept in the keychain (a stock node may not use it), so a key is now named by a key file: ' +
  "remove tag, run 'credport init' to create a new key (key.path, default $XDG_STATE_HOME/credport/secure-enclave-key.json) " +
  "and publish its kid with 'credport oidc export' (docs/key-backends.md)";

/**
 * Validates and fills defaults in place; throws ConfigError listing every problem.
 * The [key] table is checked in a second step against its backend's schema, so
 * that a PKCS#11 config is not told about the file backend's keys.
 */
export function validateConfig(file: string, data: unknown): Config {
  const ok = validateSchema(data);
  const errors = problemsOf(validateSchema, '', data);
  const key = (data as { key?: { backend?: unknown } } | null)?.key;
  if (key && typeof key === 'object' && typeof key.backend === 'string' && key.backend in validateKey) {
    const v = validateKey[key.backend as KeyConfig['backend']];
    if (!v(key)) errors.push(...problemsOf(v, '/key', data));
    if (key.backend === 'secure-enclave' && 'tag' in key) throw new ConfigError(file, [SECURE_ENCLAVE_TAG_GONE]);
  }
  const rsaKey = (data as { rsa_key?: { backend?: unknown } } | null)?.rsa_key;
  if (rsaKey && typeof rsaKey === 'object' && typeof rsaKey.backend === 'string' && rsaKey.backend in validateRsaKey) {
    const v = validateRsaKey[rsaKey.backend] as Validator;
    if (!v(rsaKey)) errors.push(...problemsOf(v, '/rsa_key', data));
  }
  const profiles = (data as { profiles?: Record<string, { type?: unknown }> } | null)?.profiles;
  if (profiles && typeof profiles === 'object') {
    for (const [name, p] of Object.entries(profiles)) {
      if (!p || typeof p !== 'object' || typeof p.type !== 'string' || !(p.type in validateProfile)) continue;
      const v = validateProfile[p.type];
      if (!v) continue;
      const path = `/profiles/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (!v(p)) errors.push(...problemsOf(v, path, data));
    }
  }
  if (ok && errors.length === 0) return data as Config;
  const seen = new Set<string>();
  const problems: string[] = [];
  const unionPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const err of errors) {
    // A union of literals reports each branch; the parent's anyOf error says it once.
    if (err.keyword === 'const' && unionPaths.has(err.instancePath)) continue;
    const msg =
      err.keyword === 'anyOf'
        ? `${keyPath(err.instancePath)}: expected ${expectation(err)}, got ${describeValue(err.data)}`
        : formatError(err);
    if (msg && !seen.has(msg)) {
      seen.add(msg);
      problems.push(msg);
    }
  }
  throw new ConfigError(file, problems.length > 0 ? problems : ['invalid configuration']);
}
