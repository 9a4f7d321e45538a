import { createHash, type KeyObject } from 'node:crypto';
import type { EcPublicJwk, KeyAlgorithm, PublicJwk, RsaPublicJwk } from './signer.js';

/** Smallest RSA modulus credport signs with: what Entra ID and every JOSE verifier accept. */
export const MIN_RSA_BITS = 2048;
/** Largest: a bigger key signs slowly and no cloud needs it. */
export const MAX_RSA_BITS = 8192;

/** Exports a P-256 public key as the minimal JWK, rejecting any other curve. */
export function ecPublicJwk(key: KeyObject): EcPublicJwk {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new Error(`unsupported key: expected an EC P-256 key, got ${jwk.kty ?? 'unknown'} ${jwk.crv ?? ''}`.trim());
  }
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

/** Exports an RSA public key (2048 to 8192 bits) as the minimal JWK. */
export function rsaPublicJwk(key: KeyObject): RsaPublicJwk {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.e !== 'string') {
    throw new Error(`unsupported key: expected an RSA key, got ${jwk.kty ?? 'unknown'}`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS)
    throw new Error(`unsupported key: an RSA key of ${bits} bits; credport needs ${MIN_RSA_BITS} to ${MAX_RSA_BITS}`);
  return { kty: 'RSA', n: jwk.n, e: jwk.e };
}

/** The JWK of a P-256 or RSA public key, and the JWS algorithm it signs with. */
export function publicJwkOf(key: KeyObject): { jwk: PublicJwk; algorithm: KeyAlgorithm } {
  if (key.asymmetricKeyType === 'rsa') return { jwk: rsaPublicJwk(key), algorithm: 'RS256' };
  return { jwk: ecPublicJwk(key), algorithm: 'ES256' };
}

/** The JWS algorithm of a public JWK. */
export function algorithmOf(jwk: PublicJwk): KeyAlgorithm {
  return jwk.kty === 'RSA' ? 'RS256' : 'ES256';
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
