/**
 * Mints the JWT the device presents to STS (ES256) or to Entra ID (RS256, from the [rsa_key]). Built by hand rather than
 * with a JOSE library so that the signature can come from any KeySigner,
 * hardware included; jose verifies it in the tests and in the emulator.
 */
import { randomUUID } from 'node:crypto';
import type { KeySigner } from '../keys/signer.js';

export interface IdentityTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

export interface MintOptions {
  issuer: string;
  subject: string;
  audience: string;
  lifetimeSeconds: number;
  /** Clock in milliseconds, injectable for tests. */
  now?: () => number;
  /** Claims a cloud adds (AWS session tags); they cannot replace the registered claims above. */
  extraClaims?: Readonly<Record<string, unknown>>;
}

const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

export async function mintIdentityToken(signer: KeySigner, opts: MintOptions): Promise<{ token: string; claims: IdentityTokenClaims }> {
  const iat = Math.floor((opts.now ?? Date.now)() / 1000);
  const claims: IdentityTokenClaims = {
    ...opts.extraClaims,
    iss: opts.issuer,
    sub: opts.subject,
    aud: opts.audience,
    iat,
    nbf: iat,
    exp: iat + opts.lifetimeSeconds,
    jti: randomUUID(),
  };
  const header = { alg: signer.algorithm, typ: 'JWT', kid: signer.thumbprint };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = await signer.sign(Buffer.from(signingInput, 'ascii'));
  if (signer.algorithm === 'ES256' && signature.length !== 64) {
    // A DER signature here would make every token invalid at STS; fail loudly instead.
    throw new Error(`key backend returned a ${signature.length}-byte signature; ES256 needs raw 64-byte r||s`);
  }
  if (signer.algorithm === 'RS256' && signature.length < 256) {
    throw new Error(`key backend returned a ${signature.length}-byte signature; RS256 with a 2048-bit key or larger needs at least 256`);
  }
  return { token: `${signingInput}.${b64url(signature)}`, claims };
}

/** Default `sub`: stable per device key, and says what it is. */
export function defaultSubject(signer: KeySigner): string {
  return `device:${signer.thumbprint}`;
}
