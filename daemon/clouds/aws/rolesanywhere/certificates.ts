/**
 * The device certificate and its intermediates, from one of two sources behind one interface
 * (CertificateProvider):
 *
 * - PEM files (CertificateSource), read again whenever a file changes on disk (renewal by cron, an ACME
 *   client, a config-management run): a stat of each file before every request is cheap, and a renewed
 *   certificate is used without restarting anything.
 * - The PKCS#11 token holding the device key (TokenCertificateSource), read again before every request:
 *   one token call, and a certificate renewed on the token is used without a restart.
 *
 * Loading checks what would otherwise come back as an opaque AccessDenied: the chain file must not hold
 * the leaf (Roles Anywhere wants intermediates only), and the chain must be in order, each certificate
 * issued by the next.
 */
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { pemCertificates } from '../../../x509/pem.js';
import { X509Certificate } from '../../../x509/x509-lib.js';

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  /** The code /health shows: CertificateUnavailable, or the key backend's (CERTIFICATE_NOT_FOUND, TOKEN_NOT_PRESENT, ...). */
  constructor(
    message: string,
    readonly code: string = 'CertificateUnavailable',
  ) {
    super(message);
  }
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

/** Where a profile's certificate comes from. Failures are CertificateErrors. */
export interface CertificateProvider {
  /** Names the source in messages: a file path, or the token. */
  readonly where: string;
  /** The chain to sign with now, read again if it may have changed. */
  current(): CertificateChain | Promise<CertificateChain>;
  /** For /health, without waiting on a token: files are re-read if changed; the token's is the last read. */
  known(): CertificateChain | undefined;
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
    throw new CertificateError(
      code === 'ENOENT' ? `${what} ${path} does not exist` : `${what} ${path} cannot be read (${code ?? 'error'})`,
    );
  }
  const ders = pemCertificates(text);
  if (ders.length === 0) throw new CertificateError(`${what} ${path} holds no PEM CERTIFICATE block`);
  return ders;
}

/** The chain file's intermediates; it must not hold the leaf. */
function readChainFile(chainPath: string, leafDer: Uint8Array): Uint8Array[] {
  const chainDers = readCertificates(chainPath, 'chain file');
  if (chainDers.some((der) => sameBytes(der, leafDer))) {
    throw new CertificateError(
      `chain file ${chainPath} contains the device certificate itself; it must hold only the intermediate CA certificates`,
    );
  }
  return chainDers;
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
      throw new CertificateError(
        `certificate file ${certificatePath} already holds ${bundled.length} intermediate(s) after the leaf, and a chain file is configured too; use one or the other`,
      );
    }
    chainDers = readChainFile(chainPath, leafDer);
  }
  return checkedChain(leafDer, `certificate file ${certificatePath}`, chainDers, chainPath ?? certificatePath);
}

/** Describes the leaf and intermediates and checks that the chain is in order, each issued by the next. */
function checkedChain(leafDer: Uint8Array, leafWhat: string, chainDers: Uint8Array[], where: string): CertificateChain {
  const leaf = describeDer(leafDer, leafWhat);
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
      throw new CertificateError(
        `${where} is not in order: ${childName} is not issued by the next certificate (${chain[i]?.subject ?? '?'}); list the issuer of each certificate right after it`,
      );
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

  constructor(
    readonly certificatePath: string,
    readonly chainPath?: string,
  ) {}

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

  get where(): string {
    return this.certificatePath;
  }

  known(): CertificateChain | undefined {
    try {
      return this.current();
    } catch {
      return undefined;
    }
  }
}

/** isIssuedBy for certificates that may not parse: those issued nothing. */
function issuedBy(child: Uint8Array, issuer: Uint8Array): boolean {
  try {
    return isIssuedBy(child, issuer);
  } catch {
    return false;
  }
}

/**
 * The intermediates among other certificates stored on the token, in order: from the leaf, each one's
 * issuer while one is there. Roots are left out (the trust anchor holds them), and so is anything that
 * issued nothing in the path (an older certificate for the same key, unrelated objects).
 */
export function intermediatesFrom(leafDer: Uint8Array, candidates: Uint8Array[]): Uint8Array[] {
  const pool = candidates.filter((der) => !sameBytes(der, leafDer) && !issuedBy(der, der));
  const out: Uint8Array[] = [];
  let current = leafDer;
  while (out.length < pool.length) {
    const child = current;
    const next = pool.find((der) => !out.includes(der) && issuedBy(child, der));
    if (next === undefined) break;
    out.push(next);
    current = next;
  }
  return out;
}

/**
 * The certificate stored on the PKCS#11 token next to the device key, read again before every request
 * (one token call) so that a certificate renewed on the token is used at the next refresh. `read`
 * returns the token's certificates leaf first and throws CertificateErrors. Intermediates come from the
 * chain file when one is configured, else from the other certificates read with the leaf.
 */
export class TokenCertificateSource implements CertificateProvider {
  #last: CertificateChain | undefined;

  constructor(
    readonly read: () => Promise<Uint8Array[]>,
    readonly where: string,
    readonly chainPath?: string,
  ) {}

  async current(): Promise<CertificateChain> {
    // As with files: a failed read drops the last chain, so /health never shows a certificate that is
    // no longer on the token as if it were in use.
    this.#last = undefined;
    const [leafDer, ...others] = await this.read();
    if (leafDer === undefined) throw new CertificateError(`${this.where} holds no certificate`, 'CERTIFICATE_NOT_FOUND');
    const chainDers = this.chainPath !== undefined ? readChainFile(this.chainPath, leafDer) : intermediatesFrom(leafDer, others);
    this.#last = checkedChain(leafDer, `the certificate on ${this.where}`, chainDers, this.chainPath ?? this.where);
    return this.#last;
  }

  known(): CertificateChain | undefined {
    return this.#last;
  }
}
