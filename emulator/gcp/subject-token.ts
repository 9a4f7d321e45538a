// Verifies the subject token of an STS exchange the way Google does for an OIDC provider: the header
// must name a kid and ES256 or RS256; iss must equal the provider's issuerUri before any key is looked
// up; keys come from the uploaded JWKS or from OIDC discovery; then signature, aud, exp, nbf and iat
// (not in the future beyond the skew, at most 24 h old), and the mapped google.subject (sub, at most
// 127 bytes) and the attribute condition. Every refusal is an OAuthError with Google's error code.
//
// Nothing is cached between calls: a key removed from the JWKS stops working on the next exchange.

import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { IDP_TIMEOUT_MS, IdpDocumentError, discoverJwks, echo } from '../idp-documents.js';
import { OAuthError } from './errors.js';
import type { WorkloadIdentityPoolProvider } from './registry.js';

/** Google accepts RS256 and ES256 from OIDC providers. */
const ALGORITHMS = ['ES256', 'RS256'];
/** Google refuses a token issued more than a day ago, however long it claims to live. */
const MAX_TOKEN_AGE_SECONDS = 24 * 3600;
/** google.subject is limited to 127 bytes after mapping; the emulator maps it from sub unchanged. */
const MAX_SUBJECT_BYTES = 127;

export interface SubjectTokenDeps {
  /** Clock in milliseconds. */
  now(): number;
  clockSkewSeconds: number;
  idpTimeoutMs?: number;
}

export interface VerifiedSubjectToken {
  /** The mapped google.subject. */
  subject: string;
  claims: JWTPayload;
}

const invalidGrant = (message: string): OAuthError => new OAuthError(400, 'invalid_grant', message);

function keySource(provider: WorkloadIdentityPoolProvider): string {
  return provider.jwks === undefined ? `the JWKS of ${provider.issuerUri}` : 'the JWKS uploaded to the provider';
}

function mapJoseError(err: unknown, provider: WorkloadIdentityPoolProvider, kid: string): OAuthError {
  if (err instanceof errors.JWKSNoMatchingKey)
    return invalidGrant(`No key with kid ${echo(kid)} for the token's algorithm in ${keySource(provider)}`);
  if (err instanceof errors.JWKSMultipleMatchingKeys)
    return invalidGrant(`More than one key with kid ${echo(kid)} in ${keySource(provider)}`);
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return invalidGrant(`The token signature does not verify with key ${echo(kid)}`);
  if (err instanceof errors.JWTExpired) return invalidGrant('The subject token has expired (exp is in the past)');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return invalidGrant(`The subject token has no ${err.claim} claim`);
    switch (err.claim) {
      case 'aud':
        return invalidGrant(`The subject token's aud ${echo(JSON.stringify(err.payload.aud))} is not an audience the provider accepts`);
      case 'iss':
        return invalidGrant(`The subject token's iss does not match the provider's issuer ${provider.issuerUri}`);
      case 'nbf':
        return invalidGrant('The subject token is not valid yet (nbf is in the future)');
      default:
        return invalidGrant(`The subject token's ${err.claim} claim is invalid`);
    }
  }
  if (err instanceof errors.JWKSInvalid || err instanceof errors.JWKInvalid)
    return invalidGrant(`${keySource(provider)} is not a usable JSON Web Key Set`);
  if (err instanceof errors.JOSEError) return invalidGrant(`The subject token is invalid: ${err.message}`);
  // jose reports keys it cannot use (wrong curve, tiny RSA modulus) as TypeError.
  if (err instanceof TypeError) return invalidGrant(`Key ${echo(kid)} cannot verify the subject token`);
  return invalidGrant('The subject token could not be verified');
}

async function keysOf(provider: WorkloadIdentityPoolProvider, deps: SubjectTokenDeps): Promise<JSONWebKeySet> {
  if (provider.jwks !== undefined) return provider.jwks;
  try {
    return (await discoverJwks(provider.issuerUri, deps.idpTimeoutMs ?? IDP_TIMEOUT_MS)).jwks as unknown as JSONWebKeySet;
  } catch (err) {
    // Google reports an unreachable or inconsistent issuer as invalid_grant, naming the issuer.
    if (err instanceof IdpDocumentError) throw invalidGrant(`Could not get the keys of the credential's issuer: ${err.message}`);
    throw err;
  }
}

export async function verifySubjectToken(
  token: string,
  provider: WorkloadIdentityPoolProvider,
  deps: SubjectTokenDeps,
): Promise<VerifiedSubjectToken> {
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw invalidGrant('The subject token is not a JWT in compact form');
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    throw invalidGrant('The subject token could not be decoded as a JWT');
  }
  if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) {
    throw invalidGrant(`The subject token's algorithm ${echo(String(header.alg))} is not supported; use ES256 or RS256`);
  }
  if (typeof header.kid !== 'string' || header.kid.length === 0) {
    throw invalidGrant('The subject token header has no kid, so no key can be chosen');
  }
  const kid = header.kid;
  // Checked before any key is fetched: a token from another issuer never makes the service call out.
  if (unverified.iss !== provider.issuerUri) {
    throw invalidGrant(`The subject token's iss does not match the provider's issuer ${provider.issuerUri}`);
  }

  const keys = await keysOf(provider, deps);
  // Read the clock once so every check in this call agrees on "now".
  const nowMs = deps.now();
  const nowSeconds = Math.floor(nowMs / 1000);
  const skew = deps.clockSkewSeconds;
  let claims: JWTPayload;
  try {
    const result = await jwtVerify(token, createLocalJWKSet(keys), {
      issuer: provider.issuerUri,
      audience: [...provider.allowedAudiences],
      algorithms: ALGORITHMS,
      currentDate: new Date(nowMs),
      clockTolerance: skew,
      requiredClaims: ['iss', 'sub', 'aud', 'iat', 'exp'],
    });
    claims = result.payload;
  } catch (err) {
    throw mapJoseError(err, provider, kid);
  }

  // jose checks iat against the clock only with a maximum age; Google refuses both ends itself.
  if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) throw invalidGrant("The subject token's iat must be a NumericDate");
  if (claims.iat > nowSeconds + skew) {
    throw invalidGrant(
      `The subject token was issued in the future: iat ${claims.iat} is more than ${skew}s after the current time ${nowSeconds}`,
    );
  }
  if (nowSeconds - claims.iat > MAX_TOKEN_AGE_SECONDS) {
    throw invalidGrant(`The subject token was issued more than 24 hours ago (iat ${claims.iat}, current time ${nowSeconds})`);
  }
  const subject = claims.sub;
  if (typeof subject !== 'string' || subject.length === 0) throw invalidGrant("The subject token's sub must be a non-empty string");
  const subjectBytes = Buffer.byteLength(subject, 'utf8');
  if (subjectBytes > MAX_SUBJECT_BYTES) {
    throw new OAuthError(
      400,
      'invalid_request',
      `The mapped attribute google.subject is ${subjectBytes} bytes; the limit is ${MAX_SUBJECT_BYTES} bytes`,
    );
  }
  if (provider.allowedSubjects !== undefined && !provider.allowedSubjects.includes(subject)) {
    throw new OAuthError(400, 'unauthorized_client', "The provider's attribute condition rejects this credential");
  }
  return { subject, claims };
}
