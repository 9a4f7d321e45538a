import { createHash, type KeyObject } from 'node:crypto';
import type { EcPublicJwk, PublicJwk } from './signer.js';

/** Exports a P-256 public key as the minimal JWK, rejecting any other curve. */
export function ecPublicJwk(key: KeyObject): EcPublicJwk {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new Error(`unsupported key: expected an EC P-256 key, got ${jwk.kty ?? 'unknown'} ${jwk.crv ?? ''}`.trim());
  }
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

/**
 * RFC 7638: SHA-256 over the required members in lexicographic order with no
 * whitespace. Built by hand so the member order is not left to JSON.stringify
 * of an object that may have been created in another order.
 */
export function jwkThumbprint(jwk: PublicJwk): string {
  const canonical =
    jwk.kty === 'RSA'
      ? `{"e":"${jwk.e}","kty":"RSA","n":"${jwk.n}"}`
      : `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}
