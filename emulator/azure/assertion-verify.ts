// Verifies a client assertion the way Entra does for a federated identity credential: RS256 only
// (ES256 is refused with AADSTS5002738), the issuer's keys found through its discovery document,
// the signature checked with jose, then exp, and iss, sub and aud each matching one of the
// application's federated credentials exactly. Nothing from the token is believed before its
// signature verifies except as a pointer to where its keys live.

import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { IDP_TIMEOUT_MS, IdpDocumentError, discoverJwks, echo } from '../idp-documents.js';
import { EntraError } from './errors.js';
import type { Application } from './registry.js';

export interface VerifiedAssertion {
  issuer: string;
  subject: string;
  audience: string;
}

const invalidClient = (aadsts: number, message: string): EntraError => new EntraError(401, 'invalid_client', aadsts, message);

export async function verifyClientAssertion(
  assertion: string,
  app: Application,
  opts: { now: number; clockSkewSeconds: number },
): Promise<VerifiedAssertion> {
  let alg: unknown;
  let iss: unknown;
  try {
    alg = decodeProtectedHeader(assertion).alg;
    iss = decodeJwt(assertion).iss;
  } catch {
    throw invalidClient(50027, 'JWT token is invalid or malformed.');
  }
  if (alg !== 'RS256')
    throw invalidClient(
      5002738,
      `Invalid JWT token. '${echo(String(alg))}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256, HS256'`,
    );
  if (typeof iss !== 'string' || iss === '') throw invalidClient(50027, 'JWT token is invalid: no iss claim.');
  const candidates = app.federatedCredentials.filter((f) => f.issuer === iss);
  if (candidates.length === 0)
    throw invalidClient(700211, `No matching federated identity record found for presented assertion issuer '${echo(iss)}'.`);
  let keys: Awaited<ReturnType<typeof discoverJwks>>;
  try {
    keys = await discoverJwks(iss, IDP_TIMEOUT_MS);
  } catch (err) {
    if (err instanceof IdpDocumentError)
      throw invalidClient(
        err.problem === 'issuer-mismatch' ? 50027 : 700222,
        `Unable to retrieve the signing keys of issuer '${echo(iss)}': ${err.message}`,
      );
    throw err;
  }
  let claims: Record<string, unknown>;
  try {
    const result = await jwtVerify(assertion, createLocalJWKSet(keys.jwks as unknown as Parameters<typeof createLocalJWKSet>[0]), {
      algorithms: ['RS256'],
      issuer: iss,
      currentDate: new Date(opts.now),
      clockTolerance: opts.clockSkewSeconds,
      requiredClaims: ['exp', 'sub', 'aud'],
    });
    claims = result.payload as Record<string, unknown>;
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw invalidClient(700024, 'Client assertion is not within its valid time range.');
    if (err instanceof errors.JWTClaimValidationFailed)
      throw invalidClient(err.claim === 'nbf' ? 700024 : 50027, `JWT token is invalid: ${err.claim} ${err.reason}.`);
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed)
      throw invalidClient(700027, `Client assertion failed signature validation (keys from ${keys.jwksUri}).`);
    throw invalidClient(50027, 'JWT token is invalid or malformed.');
  }
  const subject = claims.sub;
  if (typeof subject !== 'string') throw invalidClient(50027, 'JWT token is invalid: sub is not a string.');
  const bySubject = candidates.filter((f) => f.subject === subject);
  if (bySubject.length === 0)
    throw invalidClient(
      700213,
      `No matching federated identity record found for presented assertion subject '${echo(subject)}'. Please note that the matching is done using a case-sensitive comparison.`,
    );
  const auds = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  const match = bySubject.find((f) => f.audiences.some((a) => auds.includes(a)));
  if (!match)
    throw invalidClient(700212, `No matching federated identity record found for presented assertion audience '${echo(auds.join(','))}'.`);
  return { issuer: iss, subject, audience: match.audiences.find((a) => auds.includes(a)) ?? '' };
}
