// Google-signed ID tokens: IAM Credentials generateIdToken (POST
// /v1/projects/-/serviceAccounts/EMAIL:generateIdToken) and the issuer that publishes their keys (an
// emulated https://accounts.google.com under /gcp/accounts, with a discovery document and a JWKS).
// The tokens are shaped as Google's: RS256 with a kid, iss the issuer, aud the requested audience, sub
// and azp the service account's numeric unique id, email when asked, an hour of life. Authorization
// is generateAccessToken's: a federated identity bound with roles/iam.workloadIdentityUser.

import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { readBody } from '../read-body.js';
import type { GoogleContext } from './context.js';
import { GoogleApiError, sendGoogleApiError, sendJson } from './errors.js';
import { MAX_BODY_BYTES, mediaType } from './http.js';
import { authenticate } from './iamcredentials.js';

export const GCP_ACCOUNTS_PREFIX = '/gcp/accounts';
const ID_TOKEN_SECONDS = 3600;

/** A service account's unique id as Google shows it: 21 digits, stable per email. */
export function serviceAccountUniqueId(email: string): string {
  const digits = BigInt(`0x${createHash('sha256').update(email).digest('hex').slice(0, 20)}`)
    .toString()
    .padStart(21, '0');
  return `1${digits.slice(-20)}`;
}

export class GoogleIdTokenIssuer {
  #keys: Promise<{ privateKey: CryptoKey; jwk: JWK }> | undefined;

  constructor(private readonly base: () => string) {}

  get issuer(): string {
    return `${this.base()}${GCP_ACCOUNTS_PREFIX}`;
  }

  #key(): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
    this.#keys ??= (async () => {
      const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
      const jwk = await exportJWK(publicKey);
      const kid = createHash('sha256').update(JSON.stringify(jwk)).digest('hex').slice(0, 40);
      return { privateKey, jwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
    })();
    return this.#keys;
  }

  async sign(email: string, audience: string, includeEmail: boolean, nowMs: number): Promise<string> {
    const { privateKey, jwk } = await this.#key();
    const id = serviceAccountUniqueId(email);
    const iat = Math.floor(nowMs / 1000);
    return new SignJWT({ azp: id, ...(includeEmail ? { email, email_verified: true } : {}) })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid ?? '', typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(id)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ID_TOKEN_SECONDS)
      .sign(privateKey);
  }

  /** GET /gcp/accounts/.well-known/openid-configuration and /gcp/accounts/certs. */
  async handle(res: ServerResponse, path: string): Promise<void> {
    const rest = path.slice(GCP_ACCOUNTS_PREFIX.length);
    if (rest === '/.well-known/openid-configuration') {
      sendJson(res, 200, {
        issuer: this.issuer,
        jwks_uri: `${this.issuer}/certs`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
      return;
    }
    if (rest === '/certs') {
      sendJson(res, 200, { keys: [(await this.#key()).jwk] });
      return;
    }
    sendGoogleApiError(res, new GoogleApiError(404, 'NOT_FOUND', 'The requested URL was not found on this server'));
  }
}

/** The service account email of a generateIdToken path (below the service prefix), or undefined. */
export function generateIdTokenTarget(path: string): string | undefined {
  const m = /^\/v1\/projects\/-\/serviceAccounts\/([^/]+):generateIdToken$/.exec(path);
  if (!m) return undefined;
  try {
    const email = decodeURIComponent(m[1] ?? '');
    return email.includes('@') ? email : undefined;
  } catch {
    return undefined;
  }
}

export async function handleGenerateIdToken(
  req: IncomingMessage,
  res: ServerResponse,
  email: string,
  ctx: GoogleContext,
): Promise<boolean> {
  try {
    if (req.method !== 'POST') throw new GoogleApiError(404, 'NOT_FOUND', 'generateIdToken is served on POST only');
    const caller = authenticate(req, ctx);
    if (mediaType(req.headers['content-type']) !== 'application/json')
      throw new GoogleApiError(400, 'INVALID_ARGUMENT', 'The request body must be application/json');
    const raw = await readBody(req, MAX_BODY_BYTES, () => new GoogleApiError(413, 'INVALID_ARGUMENT', 'The request body is too large'));
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new GoogleApiError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload: the body is not JSON');
    }
    const audience = body?.audience;
    if (typeof audience !== 'string' || audience === '' || audience.length > 1024)
      throw new GoogleApiError(400, 'INVALID_ARGUMENT', 'audience is required');
    if (!ctx.registry.mayImpersonate(email, caller))
      throw new GoogleApiError(
        403,
        'PERMISSION_DENIED',
        `The caller lacks iam.serviceAccounts.getOpenIdToken on service account ${email.slice(0, 256)}, or the account does not exist`,
      );
    if (!ctx.idTokens) throw new GoogleApiError(500, 'INTERNAL', 'no ID token issuer');
    sendJson(res, 200, { token: await ctx.idTokens.sign(email, audience, body.includeEmail === true, ctx.now()) });
    return true;
  } catch (err) {
    sendGoogleApiError(
      res,
      err instanceof GoogleApiError ? err : new GoogleApiError(500, 'INTERNAL', 'The emulator failed to process the request'),
    );
    return false;
  }
}
