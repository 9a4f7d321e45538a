/**
 * The static issuer a fleet shares: a discovery document and one JWKS holding
 * every device's public key. Exporting merges by `kid` and never drops another
 * device's key; exporting the same key twice changes nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/secure-file.js';
import type { EcPublicJwk } from '../keys/signer.js';

export interface PublishedJwk extends EcPublicJwk {
  kid: string;
  use: 'sig';
  alg: 'ES256';
}

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

export function discoveryDocument(issuer: string, jwksUri: string = `${issuer}/${JWKS_PATH}`): DiscoveryDocument {
  return {
    issuer,
    jwks_uri: jwksUri,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    claims_supported: ['aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'sub'],
  };
}

export function publishedJwk(jwk: EcPublicJwk, kid: string): PublishedJwk {
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, use: 'sig', alg: 'ES256' };
}

/** Adds or replaces `key` by kid; other keys are kept as they were, the result sorted by kid for stable output. */
export function mergeJwks(existing: Jwks | undefined, key: PublishedJwk): Jwks {
  const others = (existing?.keys ?? []).filter((k) => k.kid !== key.kid);
  const keys = [...others, { ...key }];
  keys.sort((a, b) => String(a.kid ?? '').localeCompare(String(b.kid ?? '')));
  return { keys };
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new IssuerExportError(`${what} ${path} exists but is not valid JSON (${(err as Error).message}); fix or remove it first`);
  }
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
export function exportIssuer(dir: string, issuer: string, key: PublishedJwk): ExportResult {
  const discoveryFile = join(dir, ...DISCOVERY_PATH.split('/'));
  let discovery = discoveryDocument(issuer);
  if (existsSync(discoveryFile)) {
    const current = readJson(discoveryFile, 'discovery document') as Partial<DiscoveryDocument>;
    if (current.issuer !== issuer) {
      throw new IssuerExportError(
        `${discoveryFile} belongs to issuer ${String(current.issuer)}, not ${issuer}; export to another directory`,
      );
    }
    // Keep a jwks_uri someone chose on purpose, as long as it maps into this directory.
    if (typeof current.jwks_uri === 'string') discovery = { ...discovery, jwks_uri: current.jwks_uri };
  }
  const jwksFile = jwksFileFor(issuer, discovery.jwks_uri, dir);
  let existing: Jwks | undefined;
  if (existsSync(jwksFile)) {
    const parsed = readJson(jwksFile, 'JWKS') as Partial<Jwks>;
    if (!Array.isArray(parsed.keys)) throw new IssuerExportError(`JWKS ${jwksFile} has no "keys" array; fix or remove it first`);
    existing = { keys: parsed.keys };
  }
  const merged = mergeJwks(existing, key);
  const jwksText = `${JSON.stringify(merged, null, 2)}\n`;
  const discoveryText = `${JSON.stringify(discovery, null, 2)}\n`;
  const unchanged =
    existsSync(jwksFile) && readFileSync(jwksFile, 'utf8') === jwksText &&
    existsSync(discoveryFile) && readFileSync(discoveryFile, 'utf8') === discoveryText;
  if (!unchanged) {
    // Public documents: world-readable on purpose.
    writeFileAtomic(jwksFile, jwksText, 0o644);
    writeFileAtomic(discoveryFile, discoveryText, 0o644);
  }
  return { discoveryFile, jwksFile, keyCount: merged.keys.length, changed: !unchanged };
}
