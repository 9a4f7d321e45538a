/**
 * What `credport cert show` and `/health` tell a person about a certificate, and a chain check that
 * lists every problem at once (instead of the first AccessDenied the service would give).
 */
import { createHash, createPublicKey, X509Certificate as NodeX509Certificate, type JsonWebKey } from 'node:crypto';
import { BasicConstraintsExtension, ExtendedKeyUsageExtension, KeyUsageFlags, KeyUsagesExtension, X509Certificate } from './x509-lib.js';
import { pemCertificates } from './pem.js';

export interface CertificateDescription {
  subject: string;
  issuer: string;
  serialHex: string;
  serialDecimal: string;
  notBefore: Date;
  notAfter: Date;
  /** Key usage names (digitalSignature, keyCertSign, ...); empty when the extension is absent. */
  keyUsage: string[];
  /** Extended key usage OIDs. */
  extendedKeyUsage: string[];
  isCa: boolean;
  pathLength?: number;
  keyType: string;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprintSha256: string;
  selfSigned: boolean;
  /** Present when a key was given: whether the certificate certifies it. */
  matchesKey?: boolean;
}

/** A public key to compare with: a JWK (as KeySigner.publicJwk() gives) or DER SubjectPublicKeyInfo. */
export type PublicKeyInput = { jwk: JsonWebKey } | { spki: Uint8Array };

const USAGE_NAMES: [KeyUsageFlags, string][] = [
  [KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [KeyUsageFlags.cRLSign, 'cRLSign'],
  [KeyUsageFlags.encipherOnly, 'encipherOnly'],
  [KeyUsageFlags.decipherOnly, 'decipherOnly'],
];

function spkiOf(key: PublicKeyInput): Buffer {
  if ('spki' in key) return Buffer.from(key.spki);
  return createPublicKey({ key: { ...key.jwk }, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

function toDer(input: string | Uint8Array): Uint8Array {
  if (typeof input !== 'string') return input;
  const [first] = pemCertificates(input);
  if (first === undefined) throw new Error('no PEM CERTIFICATE block found');
  return first;
}

export function describeCertificate(input: string | Uint8Array, key?: PublicKeyInput): CertificateDescription {
  const der = toDer(input);
  const cert = new X509Certificate(der);
  const ku = cert.getExtension(KeyUsagesExtension);
  const eku = cert.getExtension(ExtendedKeyUsageExtension);
  const bc = cert.getExtension(BasicConstraintsExtension);
  const serialHex = cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
  const node = new NodeX509Certificate(der);
  let selfSigned = false;
  try {
    selfSigned = node.checkIssued(node) && node.verify(node.publicKey);
  } catch {
    selfSigned = false;
  }
  const keyDetails = node.publicKey.asymmetricKeyDetails;
  const keyType =
    node.publicKey.asymmetricKeyType === 'rsa'
      ? `RSA-${keyDetails?.modulusLength ?? '?'}`
      : node.publicKey.asymmetricKeyType === 'ec'
        ? `EC ${keyDetails?.namedCurve ?? '?'}`
        : (node.publicKey.asymmetricKeyType ?? 'unknown');
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialHex,
    serialDecimal: BigInt(`0x${serialHex || '0'}`).toString(10),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    keyUsage: ku ? USAGE_NAMES.filter(([flag]) => (ku.usages & flag) !== 0).map(([, name]) => name) : [],
    extendedKeyUsage: eku ? eku.usages.map(String) : [],
    isCa: bc?.ca ?? false,
    ...(bc?.pathLength !== undefined ? { pathLength: bc.pathLength } : {}),
    keyType,
    fingerprintSha256: createHash('sha256').update(der).digest('hex'),
    selfSigned,
    ...(key !== undefined ? { matchesKey: spkiOf(key).equals(Buffer.from(cert.publicKey.rawData)) } : {}),
  };
}

export interface ChainCheck {
  /** Each certificate is issued by the next (leaf first). */
  ordered: boolean;
  /** Every problem found, in words; empty when the chain is usable. */
  problems: string[];
}

function issuedBy(child: NodeX509Certificate, parent: NodeX509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/**
 * Checks a leaf and its intermediates (leaf excluded, issuer of the leaf first): order, duplicates,
 * the leaf inside the chain, validity at `at`, CA flags of issuers, the leaf's digitalSignature usage.
 */
export function checkChain(leaf: string | Uint8Array, chain: string | readonly Uint8Array[], options: { at?: Date } = {}): ChainCheck {
  const at = options.at ?? new Date();
  const leafDer = toDer(leaf);
  const chainDers = typeof chain === 'string' ? pemCertificates(chain) : [...chain];
  const problems: string[] = [];
  const nodes = [leafDer, ...chainDers].map((d) => new NodeX509Certificate(d));
  const descriptions = [leafDer, ...chainDers].map((d) => describeCertificate(d));
  const label = (i: number): string =>
    i === 0 ? `the leaf (${descriptions[0]?.subject ?? '?'})` : `chain certificate ${i} (${descriptions[i]?.subject ?? '?'})`;

  chainDers.forEach((d, i) => {
    if (Buffer.from(d).equals(Buffer.from(leafDer)))
      problems.push(`chain certificate ${i + 1} is the leaf itself; the chain holds intermediates only`);
    const first = chainDers.findIndex((other) => Buffer.from(other).equals(Buffer.from(d)));
    if (first !== i) problems.push(`chain certificate ${i + 1} repeats chain certificate ${first + 1}`);
  });
  let ordered = true;
  for (let i = 0; i + 1 < nodes.length; i++) {
    if (!issuedBy(nodes[i] as NodeX509Certificate, nodes[i + 1] as NodeX509Certificate)) {
      ordered = false;
      problems.push(`${label(i)} is not issued by ${label(i + 1)}`);
    }
  }
  descriptions.forEach((d, i) => {
    if (at < d.notBefore) problems.push(`${label(i)} is not valid before ${d.notBefore.toISOString()}`);
    if (at > d.notAfter) problems.push(`${label(i)} expired at ${d.notAfter.toISOString()}`);
    if (i > 0 && !d.isCa) problems.push(`${label(i)} is not a CA certificate`);
    if (i > 0 && d.keyUsage.length > 0 && !d.keyUsage.includes('keyCertSign'))
      problems.push(`${label(i)} may not sign certificates (no keyCertSign)`);
  });
  const leafDesc = descriptions[0];
  if (leafDesc?.isCa) problems.push('the leaf is a CA certificate; Roles Anywhere needs an end-entity certificate');
  if (leafDesc && !leafDesc.keyUsage.includes('digitalSignature'))
    problems.push('the leaf does not allow digitalSignature, which Roles Anywhere requires');
  return { ordered, problems };
}
