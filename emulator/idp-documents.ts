// An identity provider's published documents, fetched the way the cloud services fetch them: the OIDC
// discovery document at <issuer>/.well-known/openid-configuration, then the JWKS it points to. Every
// upstream is distrusted alike: https only (http on loopback), no redirects, a time limit, a size limit,
// and a JSON object or nothing. Each service turns IdpDocumentError into its own wire error.

import { isAllowedIdpUrl } from './idp-url.js';

/** Cloud services give up on a slow identity provider after a few seconds; so does the emulator. */
export const IDP_TIMEOUT_MS = 5000;
/** Discovery documents and key sets are small; a huge body means something is wrong. */
export const IDP_MAX_BYTES = 512 * 1024;
/** Values taken from requests or documents are echoed in messages; keep them readable. */
const MAX_ECHO = 128;

/**
 * 'unreachable': the documents could not be fetched or parsed (the provider's fault or the network's).
 * 'issuer-mismatch': the discovery document names another issuer (the token's claim is not backed).
 */
export type IdpDocumentProblem = 'unreachable' | 'issuer-mismatch';

export class IdpDocumentError extends Error {
  override readonly name = 'IdpDocumentError';
  constructor(
    readonly problem: IdpDocumentProblem,
    message: string,
  ) {
    super(message);
  }
}

export const echo = (value: string): string => (value.length > MAX_ECHO ? `${value.slice(0, MAX_ECHO)}...` : value);

const unreachable = (message: string): IdpDocumentError => new IdpDocumentError('unreachable', message);

function failureReason(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause: unknown = err.cause;
    if (cause instanceof Error && 'code' in cause && typeof cause.code === 'string') return cause.code;
    if (cause instanceof Error) return cause.message;
    return err.message;
  }
  return String(err);
}

async function readCapped(response: Response, limit: number): Promise<string | undefined> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** GET a JSON object from the identity provider; every way that can fail is an 'unreachable' IdpDocumentError. */
export async function fetchIdpJson(url: string, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url);
  } catch {
    throw unreachable(`The ${what} URL is not a URL: ${echo(url)}`);
  }
  if (!isAllowedIdpUrl(parsedUrl)) {
    throw unreachable(`The ${what} URL must be https (or http on loopback): ${echo(url)}`);
  }
  let text: string | undefined;
  try {
    // Redirects are not followed: publish the documents at the URLs they claim.
    const response = await fetch(parsedUrl, {
      redirect: 'error',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw unreachable(`Could not fetch the ${what} from ${url}: HTTP ${response.status}`);
    }
    text = await readCapped(response, IDP_MAX_BYTES);
  } catch (err) {
    if (err instanceof IdpDocumentError) throw err;
    throw unreachable(`Could not fetch the ${what} from ${url}: ${failureReason(err)}`);
  }
  if (text === undefined) throw unreachable(`The ${what} at ${url} is larger than ${IDP_MAX_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw unreachable(`The ${what} at ${url} is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw unreachable(`The ${what} at ${url} is not a JSON object`);
  }
  return doc as Record<string, unknown>;
}

export interface DiscoveredKeys {
  /** The JWKS document, still to be checked as a key set by whoever uses it. */
  jwks: Record<string, unknown>;
  jwksUri: string;
}

/** OIDC discovery for an issuer: its configuration must name that very issuer and a jwks_uri. */
export async function discoverJwks(issuer: string, timeoutMs: number = IDP_TIMEOUT_MS): Promise<DiscoveredKeys> {
  const discoveryUrl = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const discovery = await fetchIdpJson(discoveryUrl, 'OpenID configuration', timeoutMs);
  if (discovery.issuer !== issuer) {
    throw new IdpDocumentError(
      'issuer-mismatch',
      `The OpenID configuration at ${discoveryUrl} names issuer ${echo(String(discovery.issuer))}, not the token's iss ${issuer}`,
    );
  }
  const jwksUri = discovery.jwks_uri;
  if (typeof jwksUri !== 'string' || jwksUri.length === 0) {
    throw unreachable(`The OpenID configuration at ${discoveryUrl} has no jwks_uri`);
  }
  return { jwks: await fetchIdpJson(jwksUri, 'JWKS', timeoutMs), jwksUri };
}
