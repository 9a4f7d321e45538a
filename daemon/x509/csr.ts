/**
 * A PKCS#10 certificate signing request for a key credport holds, so that the same device key that
 * signs OIDC tokens can get an X.509 certificate from the team's CA (or `credport ca issue`) for IAM
 * Roles Anywhere. The key may be in hardware: the request is assembled here and only the to-be-signed
 * bytes go to the key, whose signature (ES256 raw r||s from a KeySigner, DER from an X509SigningKey)
 * goes into the request in X.509's DER form.
 */
import { createPublicKey } from 'node:crypto';
import { Name, Pkcs10CertificateRequest } from './x509-lib.js';
import type { KeySigner } from '../keys/signer.js';
import { fromKeySigner, type X509SigningKey } from './signing-key.js';

export interface CsrOptions {
  /** RFC 4514 subject, e.g. "CN=edge-17, O=Example". Default: CN=credport device <thumbprint prefix>. */
  subject?: string;
}

export interface CsrResult {
  pem: string;
  subject: string;
}

// ecdsa-with-SHA256 and sha256WithRSAEncryption (with its NULL parameters), as DER AlgorithmIdentifiers.
const ECDSA_SHA256 = Uint8Array.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
const RSA_SHA256 = Uint8Array.from([0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00]);

function length(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  return Uint8Array.from([tag, ...length(body.length), ...body]);
}

export function defaultCsrSubject(thumbprint: string): string {
  // The thumbprint prefix ties the certificate to the key at a glance (and to the JWKS kid).
  return `CN=credport device ${thumbprint.slice(0, 16)}`;
}

function isKeySigner(key: KeySigner | X509SigningKey): key is KeySigner {
  return 'thumbprint' in key && typeof key.publicJwk === 'function';
}

/** Builds and signs the request; PEM "CERTIFICATE REQUEST". */
export async function createCsr(key: KeySigner | X509SigningKey, options: CsrOptions = {}): Promise<CsrResult> {
  const signing = isKeySigner(key) ? fromKeySigner(key) : key;
  const spki = signing.publicKeySpki?.();
  if (spki === undefined) throw new Error(`${signing.describe()} does not expose its public key; a CSR needs it`);
  const subject = options.subject ?? (isKeySigner(key) ? defaultCsrSubject(key.thumbprint) : undefined);
  if (subject === undefined || subject.trim() === '') throw new Error('a CSR needs a subject, e.g. "CN=edge-17, O=Example"');
  let name: Uint8Array;
  try {
    // The parser is lenient (a bare word becomes an odd name), so require attribute=value first.
    if (!/^\s*[A-Za-z][\w.-]*\s*=/.test(subject)) throw new Error('not a DN');
    name = new Uint8Array(new Name(subject).toArrayBuffer());
  } catch {
    throw new Error(`the subject ${JSON.stringify(subject)} is not a distinguished name such as "CN=edge-17, O=Example"`);
  }
  // Validates the SPKI before it goes into a request someone will sign.
  createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  // CertificationRequestInfo ::= SEQUENCE { version 0, subject, subjectPKInfo, attributes [0] {} }
  const info = tlv(0x30, Uint8Array.from([0x02, 0x01, 0x00]), name, spki, Uint8Array.from([0xa0, 0x00]));
  const signature = await signing.sign(info);
  const algorithm = signing.algorithm === 'AWS4-X509-RSA-SHA256' ? RSA_SHA256 : ECDSA_SHA256;
  // The signature is a BIT STRING with no unused bits.
  const der = tlv(0x30, info, algorithm, tlv(0x03, Uint8Array.from([0x00]), signature));
  const request = new Pkcs10CertificateRequest(der);
  return { pem: request.toString('pem'), subject: request.subject };
}
