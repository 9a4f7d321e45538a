/**
 * The one interface every key backend implements. The daemon only ever holds a
 * signer, never key material, so a hardware backend (Secure Enclave, PKCS#11)
 * can drop in without the identity or provider code noticing.
 */

/**
 * ES256 for P-256 keys (every backend); RS256 for RSA keys, which Entra ID requires of a client
 * assertion (it refuses ES256), held in a file or on a PKCS#11 token.
 */
export type KeyAlgorithm = 'ES256' | 'RS256';

/** A public EC JWK in the members RFC 7638 needs for a thumbprint. */
export interface EcPublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** A public RSA JWK in the members RFC 7638 needs for a thumbprint (base64url, no leading zeros). */
export interface RsaPublicJwk {
  kty: 'RSA';
  n: string;
  e: string;
}

export type PublicJwk = EcPublicJwk | RsaPublicJwk;

export interface KeyDescription {
  backend: string;
  /** Where the key lives, for humans: a path, a token label, a tag. Never secret. */
  location: string;
  /** Whether signing needs a person present (Touch ID, PIN pad). Such keys cannot refresh unattended. */
  userPresence: boolean;
}

export interface KeySigner {
  /** Follows the key: ES256 for P-256, RS256 for RSA. */
  readonly algorithm: KeyAlgorithm;
  /** RFC 7638 thumbprint of the public key (base64url SHA-256), used as the JWT `kid`. */
  readonly thumbprint: string;
  publicJwk(): PublicJwk;
  /**
   * Signs data with SHA-256, in the form JWS uses: ES256 the raw 64-byte r||s (IEEE P1363), RS256 the
   * RSASSA-PKCS1-v1_5 signature (as long as the modulus).
   */
  sign(data: Uint8Array): Promise<Uint8Array>;
  describe(): KeyDescription;
  /**
   * Backends that store certificates next to keys (PKCS#11 tokens): the DER certificates for this key,
   * its own first. Absent elsewhere.
   */
  readCertificates?(): Promise<Uint8Array[]>;
  /**
   * Backends that store certificates next to keys: writes this key's certificate (DER) to the token,
   * then removes the certificates it replaces (same id). Absent elsewhere.
   */
  storeCertificate?(der: Uint8Array): Promise<void>;
  close(): Promise<void>;
}
