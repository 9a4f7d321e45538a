/**
 * The static issuer a fleet shares: a discovery document and one JWKS holding
 * every device's public key. Exporting merges by `kid` and never drops another
 * device's key; exporting the same key twice changes nothing.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/secure-file.js';
import { algorithmOf } from '../keys/jwk.js';
import type { KeyAlgorithm, PublicJwk } from '../keys/signer.js';

/** A key as the JWKS publishes it: `alg` per key, so a verifier never guesses RS256 from ES256. */
export type PublishedJwk = PublicJwk & {
  kid: string;
  use: 'sig';
  alg: KeyAlgorithm;
};

export interface Jwks {
  keys: Array<Record<string, unknown> & { kid?: unknown }>;
}

export interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
  response_types_supported: string[];
  subject_types_supported: string[];
  id_token_signing_alg_values_supported: string[];
  claims_supported?: string[];
}

export const DISCOVERY_PATH = '.well-known/openid-configuration';
export const JWKS_PATH = '.well-known/jwks.json';

export class IssuerExportError extends Error {
  override readonly name = 'IssuerExportError';
}

export function discoveryDocument(
  issuer: string,
  jwksUri: string = `${issuer}/${JWKS_PATH}`,
  algorithms: readonly string[] = ['ES256'],
): DiscoveryDocument {
  return {
    issuer,
    jwks_uri: jwksUri,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...algorithms],
    claims_supported: ['aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'sub'],
  };
}

export function publishedJwk(jwk: PublicJwk, kid: string): PublishedJwk {
  const alg = algorithmOf(jwk);
  if (jwk.kty === 'RSA') return { kty: 'RSA', n: jwk.n, e: jwk.e, kid, use: 'sig', alg };
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, use: 'sig', alg };
}

/** Adds or replaces each of `added` by kid; other keys are kept as they were, the result sorted by kid for stable output. */
export function mergeJwks(existing: Jwks | undefined, added: PublishedJwk | readonly PublishedJwk[]): Jwks {
  const list = Array.isArray(added) ? added : [added as PublishedJwk];
  const kids = new Set(list.map((k) => k.kid));
  const others = (existing?.keys ?? []).filter((k) => typeof k.kid !== 'string' || !kids.has(k.kid));
  const keys: Jwks['keys'] = [...others, ...list.map((k) => ({ ...k }))];
  keys.sort((a, b) => String(a.kid ?? '').localeCompare(String(b.kid ?? '')));
  return { keys };
}

/** The algorithms a JWKS's keys name, ES256 first: what the discovery document advertises. */
function algorithmsOf(jwks: Jwks): string[] {
  const named = new Set(jwks.keys.map((k) => k.alg).filter((a): a is string => a === 'ES256' || a === 'RS256'));
  return ['ES256', 'RS256'].filter((a) => named.has(a) || (a === 'ES256' && named.size === 0));
}

/** Public documents are small; anything bigger is not one credport wrote. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

/** One line, no control characters, bounded: a parser message can quote the file. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').slice(0, 120);
}

/**
 * Reads an existing document without hanging on a FIFO or reading a device:
 * opened non-blocking, checked to be a regular file of sane size first.
 */
function readDocument(path: string, what: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new IssuerExportError(
      `${what} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); fix or remove it first`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new IssuerExportError(`${what} ${path} is not a regular file; remove it first`);
    if (st.size > MAX_DOCUMENT_BYTES)
      throw new IssuerExportError(`${what} ${path} is larger than ${MAX_DOCUMENT_BYTES} bytes; fix or remove it first`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** A JSON object (not null, not an array), or an error naming the file. */
function readJsonObject(path: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readDocument(path, what));
  } catch (err) {
    if (err instanceof IssuerExportError) throw err;
    throw new IssuerExportError(
      `${what} ${path} exists but is not valid JSON (${oneLine((err as Error).message)}); fix or remove it first`,
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new IssuerExportError(
      `${what} ${path} is not a JSON object (found ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}); fix or remove it first`,
    );
  }
  return v as Record<string, unknown>;
}

/** Another device's key is kept as it is, but it must at least be a JSON object. */
function readJwks(path: string): Jwks {
  const parsed = readJsonObject(path, 'JWKS');
  const keys = parsed.keys;
  if (!Array.isArray(keys)) throw new IssuerExportError(`JWKS ${path} has no "keys" array; fix or remove it first`);
  keys.forEach((k, i) => {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) {
      throw new IssuerExportError(
        `JWKS ${path}: keys[${i}] is not a JSON object (found ${k === null ? 'null' : Array.isArray(k) ? 'an array' : typeof k}); fix or remove it first`,
      );
    }
    const kid = (k as Record<string, unknown>).kid;
    if (kid !== undefined && typeof kid !== 'string')
      throw new IssuerExportError(`JWKS ${path}: keys[${i}].kid is not a string; fix or remove it first`);
  });
  return { keys: keys as Jwks['keys'] };
}

/** Maps a jwks_uri under the issuer to its file below the export directory. */
function jwksFileFor(issuer: string, jwksUri: string, dir: string): string {
  if (!jwksUri.startsWith(`${issuer}/`)) {
    throw new IssuerExportError(`jwks_uri ${jwksUri} is not under the issuer ${issuer}; cannot map it to a file in ${dir}`);
  }
  const rel = jwksUri.slice(issuer.length + 1);
  if (rel.split('/').some((seg) => seg === '..' || seg === '')) throw new IssuerExportError(`jwks_uri ${jwksUri} has an unsafe path`);
  return join(dir, ...rel.split('/'));
}

export interface ExportResult {
  discoveryFile: string;
  jwksFile: string;
  keyCount: number;
  changed: boolean;
}

/**
 * Writes DIR/.well-known/openid-configuration and the JWKS it names. An
 * existing discovery document for another issuer is an error, so one
 * directory never mixes two issuers.
 */
export function exportIssuer(dir: string, issuer: string, key: PublishedJwk | readonly PublishedJwk[]): ExportResult {
  const discoveryFile = join(dir, ...DISCOVERY_PATH.split('/'));
  let discovery = discoveryDocument(issuer);
  if (existsSync(discoveryFile)) {
    const current = readJsonObject(discoveryFile, 'discovery document') as Partial<DiscoveryDocument>;
    if (current.issuer !== issuer) {
      const found =
        typeof current.issuer === 'string' ? oneLine(current.issuer) : `(${current.issuer === undefined ? 'none' : 'not a string'})`;
      throw new IssuerExportError(`${discoveryFile} belongs to issuer ${found}, not ${issuer}; export to another directory`);
    }
    // Keep a jwks_uri someone chose on purpose, as long as it maps into this directory.
    if (typeof current.jwks_uri === 'string') discovery = { ...discovery, jwks_uri: current.jwks_uri };
  }
  const jwksFile = jwksFileFor(issuer, discovery.jwks_uri, dir);
  let existing: Jwks | undefined;
  if (existsSync(jwksFile)) {
    existing = readJwks(jwksFile);
  }
  const merged = mergeJwks(existing, key);
  discovery = discoveryDocument(issuer, discovery.jwks_uri, algorithmsOf(merged));
  const jwksText = `${JSON.stringify(merged, null, 2)}\n`;
  const discoveryText = `${JSON.stringify(discovery, null, 2)}\n`;
  const unchanged =
    existsSync(jwksFile) &&
    readDocument(jwksFile, 'JWKS') === jwksText &&
    existsSync(discoveryFile) &&
    readDocument(discoveryFile, 'discovery document') === discoveryText;
  if (!unchanged) {
    // Public documents: world-readable on purpose.
    writeFileAtomic(jwksFile, jwksText, 0o644);
    writeFileAtomic(discoveryFile, discoveryText, 0o644);
  }
  return { discoveryFile, jwksFile, keyCount: merged.keys.length, changed: !unchanged };
}
