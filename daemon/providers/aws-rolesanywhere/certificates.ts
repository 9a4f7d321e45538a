/**
 * The device certificate and its intermediates, read from PEM files and read again whenever a file
 * changes on disk (renewal by cron, an ACME client, a config-management run): a stat of each file before
 * every request is cheap, and a renewed certificate is used without restarting anything.
 *
 * Loading checks what would otherwise come back as an opaque AccessDenied: the chain file must not hold
 * the leaf (Roles Anywhere wants intermediates only), and the chain must be in order, each certificate
 * issued by the next.
 */
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate } from '../../x509/x509-lib.js';

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
}

export interface CertificateDetails {
  /** RFC 4514-style subject, e.g. CN=device-1, O=Example. */
  subject: string;
  issuer: string;
  /** Serial number as an unsigned decimal string: the SigV4-X509 credential. */
  serialDecimal: string;
  /** Serial number as lower-case hex without leading zeros. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  keyType: 'RSA' | 'EC' | 'other';
  der: Uint8Array;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
}

export interface CertificateChain {
  leaf: CertificateDetails;
  /** Intermediates in order, leaf excluded. */
  chain: CertificateDetails[];
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/** Every CERTIFICATE block in a PEM text, as DER; other blocks (keys, parameters) are ignored. */
export function pemCertificates(text: string): Uint8Array[] {
  return [...text.matchAll(PEM_CERTIFICATE)].map((m) => new Uint8Array(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')));
}

export function serialToDecimal(hex: string): string {
  return hex === '' ? '0' : BigInt(`0x${hex}`).toString(10);
}

/** The details SigV4-X509 and /health need, from one DER certificate. */
export function describeDer(der: Uint8Array, what: string): CertificateDetails {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw new CertificateError(`${what} is not a valid X.509 certificate`);
  }
  const serialHex = cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
  const algorithm = cert.publicKey.algorithm.name;
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialDecimal: serialToDecimal(serialHex),
    serialHex,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    keyType: algorithm === 'ECDSA' || algorithm === 'ECDH' ? 'EC' : algorithm.startsWith('RSA') ? 'RSA' : 'other',
    der: new Uint8Array(cert.rawData),
    spki: new Uint8Array(cert.publicKey.rawData),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

/** Whether `issuer` issued `child`: names chain and the signature verifies with the issuer's key. */
export function isIssuedBy(child: Uint8Array, issuer: Uint8Array): boolean {
  const c = new NodeX509Certificate(child);
  const i = new NodeX509Certificate(issuer);
  // checkIssued compares names (and key identifiers); verify() checks the signature itself.
  return c.checkIssued(i) && c.verify(i.publicKey);
}

function readCertificates(path: string, what: string): Uint8Array[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CertificateError(code === 'ENOENT' ? `${what} ${path} does not exist` : `${what} ${path} cannot be read (${code ?? 'error'})`);
  }
  const ders = pemCertificates(text);
  if (ders.length === 0) throw new CertificateError(`${what} ${path} holds no PEM CERTIFICATE block`);
  return ders;
}

/**
 * Reads and checks the certificate file (first certificate: the leaf; any more: its intermediates, as in
 * a fullchain.pem) and the optional chain file (intermediates only).
 */
export function loadCertificateChain(certificatePath: string, chainPath?: string): CertificateChain {
  const certDers = readCertificates(certificatePath, 'certificate file');
  const [leafDer, ...bundled] = certDers;
  if (leafDer === undefined) throw new CertificateError(`certificate file ${certificatePath} holds no certificate`);
  let chainDers = bundled;
  if (chainPath !== undefined) {
    if (bundled.length > 0) {
      throw new CertificateError(`certificate file ${certificatePath} already holds ${bundled.length} intermediate(s) after the leaf, and a chain file is configured too; use one or the other`);
    }
    chainDers = readCertificates(chainPath, 'chain file');
    if (chainDers.some((der) => sameBytes(der, leafDer))) {
      throw new CertificateError(`chain file ${chainPath} contains the device certificate itself; it must hold only the intermediate CA certificates`);
    }
  }
  const leaf = describeDer(leafDer, `certificate file ${certificatePath}`);
  const where = chainPath ?? certificatePath;
  const chain = chainDers.map((der, i) => describeDer(der, `certificate ${i + 1} of ${where}`));
  if (chainDers.some((der, i) => chainDers.findIndex((other) => sameBytes(other, der)) !== i)) {
    throw new CertificateError(`${where} lists the same intermediate certificate twice`);
  }
  // Each certificate must be issued by the next one; a root at the end is allowed (issued by itself).
  const ordered = [leafDer, ...chainDers];
  for (let i = 0; i + 1 < ordered.length; i++) {
    const child = ordered[i] as Uint8Array;
    const parent = ordered[i + 1] as Uint8Array;
    let ok = false;
    try {
      ok = isIssuedBy(child, parent);
    } catch {
      ok = false;
    }
    if (!ok) {
      const childName = i === 0 ? `the device certificate (${leaf.subject})` : `intermediate ${i} (${chain[i - 1]?.subject ?? '?'})`;
      throw new CertificateError(`${where} is not in order: ${childName} is not issued by the next certificate (${chain[i]?.subject ?? '?'}); list the issuer of each certificate right after it`);
    }
  }
  return { leaf, chain };
}

function stamp(path: string | undefined): string {
  if (path === undefined) return '-';
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? '?'}`;
  }
}

/** The certificate files of one profile, re-read when either changes. */
export class CertificateSource {
  #loaded: CertificateChain | undefined;
  #stamp = '';

  constructor(readonly certificatePath: string, readonly chainPath?: string) {}

  /** The current chain; reads the files again when their inode, size or times changed. Throws CertificateError. */
  current(): CertificateChain {
    const now = `${stamp(this.certificatePath)}|${stamp(this.chainPath)}`;
    if (this.#loaded === undefined || now !== this.#stamp) {
      // On failure the last good chain is dropped: a file that was replaced by something broken
      // must not keep the old certificate in use without anyone noticing.
      this.#loaded = undefined;
      this.#loaded = loadCertificateChain(this.certificatePath, this.chainPath);
      this.#stamp = now;
    }
    return this.#loaded;
  }

  /** The last chain loaded, without touching the disk. */
  peek(): CertificateChain | undefined {
    return this.#loaded;
  }
}
