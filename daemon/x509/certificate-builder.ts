/**
 * Builds and signs X.509 certificates with @peculiar/x509 from node KeyObjects: the CA in ca.ts uses it
 * for its own certificate and for every certificate it issues, and tests use it for the odd chains
 * (intermediates, expired leaves, wrong usages) a CA of our own would never produce.
 */
import { createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PublicKey,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
  type Extension,
} from './x509-lib.js';

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign';

export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface CertificateSpec {
  /** RFC 4514 string, e.g. "CN=device-1, O=Example". */
  subject: string;
  /** The certified public key: a KeyObject (public, or private to derive it from) or DER SPKI. */
  publicKey: KeyObject | Uint8Array;
  /** The issuer's private key, and its certificate (absent: self-signed, issuer = subject). */
  issuer: { privateKey: KeyObject; certificatePem?: string };
  /** Hex; default a random positive 128-bit number. */
  serialHex?: string;
  notBefore: Date;
  notAfter: Date;
  /** CA:TRUE with an optional path length; absent or false: an end-entity certificate (CA:FALSE). */
  ca?: { pathLength?: number } | false;
  /** Default: CA keyCertSign+cRLSign, end-entity digitalSignature. Empty array: no key usage extension. */
  keyUsage?: KeyUsageName[];
  /** OIDs; default none for a CA, clientAuth for an end entity. */
  extendedKeyUsage?: string[];
}

/** A random positive serial of 128 bits: top bit clear (positive in DER), never zero. */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** The WebCrypto algorithm that signs with this key, SHA-256 in every case. */
function signingAlgorithm(key: KeyObject): {
  import: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  sign: { name: string; hash: string };
} {
  if (key.asymmetricKeyType === 'rsa') {
    return { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (namedCurve === undefined) throw new Error(`unsupported EC curve ${curve ?? 'unknown'}`);
    return { import: { name: 'ECDSA', namedCurve }, sign: { name: 'ECDSA', hash: 'SHA-256' } };
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
}

async function toCryptoKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const alg = signingAlgorithm(key);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, alg.import, false, ['sign']);
}

/** The WebCrypto key and algorithm that sign with a CA key (CRLs as well as certificates). */
export async function signingKeyOf(key: KeyObject): Promise<{ key: webcrypto.CryptoKey; algorithm: { name: string; hash: string } }> {
  return { key: await toCryptoKey(key), algorithm: signingAlgorithm(key).sign };
}

function spkiOf(key: KeyObject | Uint8Array): Uint8Array {
  if (key instanceof Uint8Array) return key;
  // A private KeyObject (a self-signed CA passes its own) has its public half derived.
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
}

const USAGE_FLAGS: Record<KeyUsageName, KeyUsageFlags> = {
  digitalSignature: KeyUsageFlags.digitalSignature,
  nonRepudiation: KeyUsageFlags.nonRepudiation,
  keyEncipherment: KeyUsageFlags.keyEncipherment,
  dataEncipherment: KeyUsageFlags.dataEncipherment,
  keyAgreement: KeyUsageFlags.keyAgreement,
  keyCertSign: KeyUsageFlags.keyCertSign,
  cRLSign: KeyUsageFlags.cRLSign,
};

export async function buildCertificate(spec: CertificateSpec): Promise<X509Certificate> {
  const publicKey = new PublicKey(spkiOf(spec.publicKey));
  const issuerCert = spec.issuer.certificatePem === undefined ? undefined : new X509Certificate(spec.issuer.certificatePem);
  const isCa = spec.ca !== undefined && spec.ca !== false;
  const extensions: Extension[] = [];
  extensions.push(new BasicConstraintsExtension(isCa, isCa && spec.ca ? spec.ca.pathLength : undefined, true));
  const usages = spec.keyUsage ?? (isCa ? ['keyCertSign', 'cRLSign'] : ['digitalSignature']);
  if (usages.length > 0)
    extensions.push(
      new KeyUsagesExtension(
        usages.reduce((flags, u) => flags | USAGE_FLAGS[u], 0),
        true,
      ),
    );
  const eku = spec.extendedKeyUsage ?? (isCa ? [] : [EKU_CLIENT_AUTH]);
  if (eku.length > 0) extensions.push(new ExtendedKeyUsageExtension(eku, false));
  extensions.push(await SubjectKeyIdentifierExtension.create(publicKey));
  // The authority key identifier repeats the issuer's subject key identifier when it has one, so that
  // path builders match it even for a CA whose identifier was computed another way.
  const issuerSki = issuerCert?.getExtension(SubjectKeyIdentifierExtension);
  if (issuerSki) extensions.push(new AuthorityKeyIdentifierExtension(issuerSki.keyId));
  else if (issuerCert) extensions.push(await AuthorityKeyIdentifierExtension.create(issuerCert.publicKey));
  else extensions.push(await AuthorityKeyIdentifierExtension.create(publicKey));

  const signingKey = await toCryptoKey(spec.issuer.privateKey);
  return X509CertificateGenerator.create({
    serialNumber: spec.serialHex ?? randomSerialHex(),
    subject: spec.subject,
    issuer: issuerCert ? issuerCert.subjectName : spec.subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey,
    signingKey,
    signingAlgorithm: signingAlgorithm(spec.issuer.privateKey).sign,
    extensions,
  });
}
