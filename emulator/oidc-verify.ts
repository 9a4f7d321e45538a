// Verifies a web identity token the way STS does: locate the provider by the token's (still untrusted)
// iss, fetch the issuer's discovery document and JWKS over real HTTP, pick the key by kid, check the
// signature, then iss, aud, exp, nbf and iat against the injected clock. Nothing read from the token
// before the signature check is believed except as a pointer to where its keys live.
//
// Nothing is cached between calls: a key removed from the JWKS stops working on the next call. Real STS
// caches keys for a while, so tests that pass here cannot rely on a slow rotation being tolerated.

import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import type { OidcProvider } from './iam.js';
import { IDP_TIMEOUT_MS, IdpDocumentError, discoverJwks, echo } from './idp-documents.js';
import { StsError } from './xml.js';

export const SUPPORTED_ALGORITHMS = ['ES256', 'RS256'] as const;

export interface VerifierDeps {
  findProvider(issuer: string): OidcProvider | undefined;
  /** Clock in milliseconds. */
  now(): number;
  clockSkewSeconds: number;
  idpTimeoutMs?: number;
}

export interface VerifiedWebIdentity {
  provider: OidcProvider;
  issuer: string;
  subject: string;
  /** The token audience that matched one of the provider's client IDs. */
  audience: string;
  claims: JWTPayload;
}

const invalidToken = (message: string): StsError => new StsError(400, 'InvalidIdentityToken', message);
const idpError = (message: string): StsError => new StsError(400, 'IDPCommunicationError', message);

interface UnverifiedToken {
  alg: string;
  kid: string;
  issuer: string;
}

/** Reads just enough of the token to know which provider and key to verify it with. */
function locate(token: string): UnverifiedToken {
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
    throw invalidToken('The web identity token is not a JWT in compact form (three base64url segments)');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    claims = decodeJwt(token);
  } catch {
    throw invalidToken('The web identity token could not be decoded as a JWT');
  }
  const { alg, kid } = header;
  if (typeof alg !== 'string' || !(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg)) {
    throw invalidToken(`Unsupported token signing algorithm ${echo(String(alg))}; expected one of ${SUPPORTED_ALGORITHMS.join(', ')}`);
  }
  if (typeof kid !== 'string' || kid.length === 0) {
    throw invalidToken('The token header has no kid, so no key can be chosen from the JWKS');
  }
  if (typeof claims.iss !== 'string' || claims.iss.length === 0) {
    throw invalidToken('The token has no iss claim');
  }
  return { alg, kid, issuer: claims.iss };
}

function mapJoseError(
  err: unknown,
  ctx: { kid: string; alg: string; jwksUri: string; provider: OidcProvider; claims: () => JWTPayload; nowSeconds: number; skew: number },
): StsError {
  if (err instanceof errors.JWKSNoMatchingKey) {
    return invalidToken(`No key with kid ${echo(ctx.kid)} usable for ${ctx.alg} in the JWKS at ${ctx.jwksUri}`);
  }
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    // An ambiguous key set is a publishing bug (e.g. two devices with one kid); refuse rather than guess.
    return invalidToken(`More than one key with kid ${echo(ctx.kid)} in the JWKS at ${ctx.jwksUri}`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return invalidToken(`The token signature does not verify with key ${echo(ctx.kid)} from ${ctx.jwksUri}`);
  }
  if (err instanceof errors.JWTExpired) {
    const exp = ctx.claims().exp;
    return new StsError(
      400,
      'ExpiredTokenException',
      `Token expired: current date/time ${ctx.nowSeconds} must be before the expiration date/time ${String(exp)}`,
    );
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return invalidToken(`The token is missing the required ${err.claim} claim`);
    switch (err.claim) {
      case 'aud': {
        const aud = JSON.stringify(ctx.claims().aud);
        return invalidToken(
          `Incorrect token audience: ${echo(aud)} is not a client ID of the OpenID Connect provider ${ctx.provider.url} (client IDs: ${ctx.provider.clientIds.join(', ') || 'none'})`,
        );
      }
      case 'iss':
        return invalidToken(`The token iss does not match the issuer ${ctx.provider.url}`);
      case 'nbf':
        return invalidToken(
          `The token is not valid yet: nbf ${String(ctx.claims().nbf)} is later than the current date/time ${ctx.nowSeconds} plus ${ctx.skew}s of allowed clock skew`,
        );
      default:
        return invalidToken(`The token ${err.claim} claim is invalid: ${err.message}`);
    }
  }
  if (err instanceof errors.JWKSInvalid || err instanceof errors.JWKInvalid) {
    return idpError(`The JWKS at ${ctx.jwksUri} is not a valid JSON Web Key Set (or key ${echo(ctx.kid)} in it is malformed)`);
  }
  if (err instanceof errors.JOSEError) {
    return invalidToken(`The web identity token is invalid: ${err.message}`);
  }
  if (err instanceof TypeError) {
    // jose reports keys it cannot use (wrong curve, tiny RSA modulus) as TypeError.
    return invalidToken(`Key ${echo(ctx.kid)} from ${ctx.jwksUri} cannot verify ${ctx.alg}: ${err.message}`);
  }
  return invalidToken('The web identity token could not be verified');
}

export async function verifyWebIdentityToken(token: string, deps: VerifierDeps): Promise<VerifiedWebIdentity> {
  const { alg, kid, issuer } = locate(token);
  const provider = deps.findProvider(issuer);
  if (provider === undefined) {
    throw invalidToken(`No OpenIDConnect provider found in your account for ${echo(issuer)}`);
  }

  let jwksDoc: Record<string, unknown>;
  let jwksUri: string;
  try {
    ({ jwks: jwksDoc, jwksUri } = await discoverJwks(issuer, deps.idpTimeoutMs ?? IDP_TIMEOUT_MS));
  } catch (err) {
    // STS reports an issuer whose discovery names someone else as a bad token, everything else as the IdP's fault.
    if (err instanceof IdpDocumentError) throw err.problem === 'issuer-mismatch' ? invalidToken(err.message) : idpError(err.message);
    throw err;
  }

  // Read the clock once so every check in this call agrees on "now".
  const nowMs = deps.now();
  const nowSeconds = Math.floor(nowMs / 1000);
  const skew = deps.clockSkewSeconds;
  let claims: JWTPayload;
  try {
    const keys = createLocalJWKSet(jwksDoc as unknown as Parameters<typeof createLocalJWKSet>[0]);
    const result = await jwtVerify(token, keys, {
      issuer,
      audience: [...provider.clientIds],
      algorithms: [...SUPPORTED_ALGORITHMS],
      currentDate: new Date(nowMs),
      clockTolerance: skew,
      requiredClaims: ['exp', 'iat', 'sub', 'aud'],
    });
    claims = result.payload;
  } catch (err) {
    // Claims are only shown in messages once jose has checked the signature, which precedes claim checks.
    const claimsOf = (): JWTPayload =>
      err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired ? err.payload : {};
    throw mapJoseError(err, { kid, alg, jwksUri, provider, claims: claimsOf, nowSeconds, skew });
  }

  // jose only checks iat against the clock when a maximum age is configured; STS rejects future iat.
  if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) {
    throw invalidToken('The token iat claim must be a NumericDate');
  }
  if (claims.iat > nowSeconds + skew) {
    throw invalidToken(
      `The token was issued in the future: iat ${claims.iat} is later than the current date/time ${nowSeconds} plus ${skew}s of allowed clock skew`,
    );
  }
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) {
    throw invalidToken('The token sub claim must be a non-empty string');
  }
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? []);
  const audience = audiences.find((aud) => provider.clientIds.includes(aud));
  if (audience === undefined) {
    // jwtVerify already checked this; kept so a change there cannot silently admit a foreign audience.
    throw invalidToken(`Incorrect token audience: none of ${echo(JSON.stringify(claims.aud))} is a client ID of ${provider.url}`);
  }
  return { provider, issuer, subject: claims.sub, audience, claims };
}
