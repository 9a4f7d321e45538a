/**
 * The static issuer a fleet shares: a discovery document and one JWKS holding
 * every device's public key. Exporting merges by `kid` and never drops another
 * device's key; exporting the same key twice changes nothing.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withDirLock } from '../issuer/dir-lock.js';
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

/**
 * IAM reads at most 100 keys of a JWKS: a kid past the hundredth is never found, so the device
 * that owns it fails with InvalidIdentityToken however often it publishes.
 */
export const MAX_JWKS_KEYS = 100;

export class JwksFullError extends Error {
  override readonly name = 'JwksFullError';
  constructor(readonly count: number) {
    super(
      `the JWKS already holds ${count} keys and AWS IAM reads at most ${MAX_JWKS_KEYS}; this key was not published. ` +
        'Shard the fleet over several issuers (a prefix per group of devices, one IAM OIDC provider each), ' +
        'revoke keys of retired devices, or use Roles Anywhere for fleets this large (see docs/fleet.md)',
    );
  }
}

function sortedByKid(keys: Jwks['keys']): Jwks {
  return { keys: [...keys].sort((a, b) => String(a.kid ?? '').localeCompare(String(b.kid ?? ''))) };
}

/**
 * Adds or replaces each of `added` by kid; other keys are kept as they were, the result sorted by
 * kid for stable output. New kids that would make the set larger than IAM reads are refused.
 */
export function mergeJwks(existing: Jwks | undefined, added: PublishedJwk | readonly PublishedJwk[]): Jwks {
  const list: readonly PublishedJwk[] = Array.isArray(added) ? added : [added as PublishedJwk];
  const kids = new Set(list.map((k) => k.kid));
  const current = existing?.keys ?? [];
  const others = current.filter((k) => typeof k.kid !== 'string' || !kids.has(k.kid));
  const newKids = list.length - (current.length - others.length);
  if (newKids > 0 && others.length + list.length > MAX_JWKS_KEYS) throw new JwksFullError(current.length);
  return sortedByKid([...others, ...list.map((k) => ({ ...k }))]);
}

/** The set without `kid`; `removed` says whether it was there. */
export function withoutKid(existing: Jwks | undefined, kid: string): { jwks: Jwks; removed: boolean } {
  const current = existing?.keys ?? [];
  const keys = current.filter((k) => k.kid !== kid);
  return { jwks: sortedByKid(keys), removed: keys.length !== current.length };
}

export function renderDocument(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** The algorithms a JWKS's keys name, ES256 first: what the discovery document advertises. */
export function algorithmsOf(jwks: Jwks): string[] {
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

/** A JSON object (not null, not an array), or an error naming where the text came from. */
export function parseJsonDocument(text: string, where: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new IssuerExportError(
      `${what} ${where} exists but is not valid JSON (${oneLine((err as Error).message)}); fix or remove it first`,
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new IssuerExportError(
      `${what} ${where} is not a JSON object (found ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}); fix or remove it first`,
    );
  }
  return v as Record<string, unknown>;
}

function readJsonObject(path: string, what: string): Record<string, unknown> {
  return parseJsonDocument(readDocument(path, what), path, what);
}

function readJwks(path: string): Jwks {
  return parseJwks(readDocument(path, 'JWKS'), path);
}

/**
 * Another device's key is kept as it is, but it must at least be a JSON object with a string kid:
 * a set credport cannot read whole is never rewritten, so nothing of it is lost.
 */
export function parseJwks(text: string, path: string): Jwks {
  const parsed = parseJsonDocument(text, path, 'JWKS');
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

/** The path of a jwks_uri below the issuer ("a/b.json"), the same in a directory and in a bucket. */
export function jwksRelativePath(issuer: string, jwksUri: string, where: string): string {
  if (!jwksUri.startsWith(`${issuer}/`)) {
    throw new IssuerExportError(`jwks_uri ${jwksUri} is not under the issuer ${issuer}; cannot map it into ${where}`);
  }
  const rel = jwksUri.slice(issuer.length + 1);
  if (rel.split('/').some((seg) => seg === '..' || seg === '.' || seg === ''))
    throw new IssuerExportError(`jwks_uri ${jwksUri} has an unsafe path`);
  return rel;
}

function jwksFileFor(issuer: string, jwksUri: string, dir: string): string {
  return join(dir, ...jwksRelativePath(issuer, jwksUri, dir).split('/'));
}

/**
 * The discovery document to keep: the existing one's jwks_uri when it names this issuer, or an
 * error when it belongs to another issuer (one place never mixes two).
 */
export function reconcileDiscovery(current: Partial<DiscoveryDocument> | undefined, issuer: string, where: string): DiscoveryDocument {
  const discovery = discoveryDocument(issuer);
  if (!current) return discovery;
  if (current.issuer !== issuer) {
    const found =
      typeof current.issuer === 'string' ? oneLine(current.issuer) : `(${current.issuer === undefined ? 'none' : 'not a string'})`;
    throw new IssuerExportError(`${where} belongs to issuer ${found}, not ${issuer}; use another place for this issuer`);
  }
  // Keep a jwks_uri someone chose on purpose.
  return typeof current.jwks_uri === 'string' ? { ...discovery, jwks_uri: current.jwks_uri } : discovery;
}

export interface ExportResult {
  discoveryFile: string;
  jwksFile: string;
  keyCount: number;
  changed: boolean;
}

/**
 * Reads, changes and writes the directory's JWKS under the directory's lock, so concurrent
 * exports, revokes and rotations each see the others' result. The discovery document is written
 * too. A change that leaves the set as it was writes nothing.
 */
export function updateLocalIssuer(dir: string, issuer: string, change: (jwks: Jwks | undefined) => Jwks): ExportResult {
  return withDirLock(dir, () => {
    const discoveryFile = join(dir, ...DISCOVERY_PATH.split('/'));
    const current = existsSync(discoveryFile)
      ? (readJsonObject(discoveryFile, 'discovery document') as Partial<DiscoveryDocument>)
      : undefined;
    const discovery = reconcileDiscovery(current, issuer, discoveryFile);
    const jwksFile = jwksFileFor(issuer, discovery.jwks_uri, dir);
    const existing = existsSync(jwksFile) ? readJwks(jwksFile) : undefined;
    const merged = change(existing);
    const jwksText = renderDocument(merged);
    const discoveryText = renderDocument(discoveryDocument(issuer, discovery.jwks_uri, algorithmsOf(merged)));
    const unchanged =
      existsSync(jwksFile) &&
      readDocument(jwksFile, 'JWKS') === jwksText &&
      existsSync(discoveryFile) &&
      readDocument(discoveryFile, 'discovery document') === discoveryText;
    if (!unchanged) {
      // Public documents: world-readable on purpose. The JWKS first: a discovery document never
      // names a JWKS that is not there yet.
      writeFileAtomic(jwksFile, jwksText, 0o644);
      writeFileAtomic(discoveryFile, discoveryText, 0o644);
    }
    return { discoveryFile, jwksFile, keyCount: merged.keys.length, changed: !unchanged };
  });
}

/**
 * Writes DIR/.well-known/openid-configuration and the JWKS it names, with `key` merged in. An
 * existing discovery document for another issuer is an error, so one directory never mixes two
 * issuers.
 */
export function exportIssuer(dir: string, issuer: string, key: PublishedJwk | readonly PublishedJwk[]): ExportResult {
  return updateLocalIssuer(dir, issuer, (existing) => mergeJwks(existing, key));
}
