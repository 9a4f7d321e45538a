// Certificate checks Roles Anywhere makes before it trusts a request: the end-entity certificate and the
// intermediates the client sent must chain up to the trust anchor's CA certificate, every certificate
// must be valid at the service's time, issuers must be CAs allowed to sign certificates (basic
// constraints, path length, keyCertSign) and the leaf must be allowed to sign (digitalSignature).
//
// Path building, signatures, validity and CA flags come from pkijs's CertificateChainValidationEngine;
// what pkijs does not check (path length, leaf key usage, weak signature algorithms) is checked here.
// Nothing is shared with the daemon's certificate code, which uses @peculiar/x509.

import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { BasicConstraints, Certificate, CertificateChainValidationEngine } from 'pkijs';

const KEY_USAGE = '2.5.29.15';
const BASIC_CONSTRAINTS = '2.5.29.19';
/** SHA-1 and MD5 signatures, which Roles Anywhere refuses. */
const WEAK_SIGNATURES = new Set(['1.2.840.113549.1.1.4', '1.2.840.113549.1.1.5', '1.2.840.10045.4.1', '1.2.840.10040.4.3']);
const KU_DIGITAL_SIGNATURE = 0x80;
const KU_KEY_CERT_SIGN = 0x04;

export interface ParsedCertificate {
  der: Buffer;
  pkijs: Certificate;
  node: NodeX509Certificate;
  /** Unsigned decimal. */
  serialDecimal: string;
  /** Lower-case hex without leading zeros. */
  serialHex: string;
  subject: ReadonlyMap<string, string>;
  issuer: ReadonlyMap<string, string>;
  /** One line in the certificate's own attribute order ("CN=edge-17, O=Example"), for messages and records. */
  subjectText: string;
}

export class CertificateRejection extends Error {
  override readonly name = 'CertificateRejection';
}

/** "C=US\nO=Example\nCN=device" (OpenSSL's one-per-line form) to a map of attribute to value. */
function nameMap(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) map.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return map;
}

export function parseCertificate(der: Buffer, what: string): ParsedCertificate {
  let pk: Certificate;
  let node: NodeX509Certificate;
  try {
    pk = Certificate.fromBER(der);
    node = new NodeX509Certificate(der);
  } catch {
    throw new CertificateRejection(`${what} could not be parsed as an X.509 certificate`);
  }
  const serial = BigInt(`0x${node.serialNumber || '0'}`);
  const subject = nameMap(node.subject);
  return {
    der,
    pkijs: pk,
    node,
    serialDecimal: serial.toString(10),
    serialHex: serial.toString(16),
    subject,
    issuer: nameMap(node.issuer),
    subjectText: [...subject].map(([k, v]) => `${k}=${v}`).join(', '),
  };
}

function extension(cert: Certificate, oid: string): { critical: boolean; parsedValue: unknown } | undefined {
  return cert.extensions?.find((e) => e.extnID === oid);
}

function keyUsageByte(cert: Certificate): number | undefined {
  const ext = extension(cert, KEY_USAGE);
  if (ext === undefined) return undefined;
  const value = ext.parsedValue as { valueBlock?: { valueHexView?: Uint8Array } } | undefined;
  return value?.valueBlock?.valueHexView?.[0] ?? 0;
}

function basicConstraints(cert: Certificate): { ca: boolean; pathLen: number | undefined } {
  const value = extension(cert, BASIC_CONSTRAINTS)?.parsedValue;
  if (!(value instanceof BasicConstraints)) return { ca: false, pathLen: undefined };
  const raw = value.pathLenConstraint;
  const pathLen = raw === undefined ? undefined : typeof raw === 'number' ? raw : raw.valueBlock.valueDec;
  return { ca: value.cA, pathLen };
}

function label(cert: ParsedCertificate): string {
  return cert.subjectText === '' ? `serial ${cert.serialHex}` : cert.subjectText;
}

/**
 * Validates leaf + intermediates against the anchors at `at`. Resolves with the path (leaf first, anchor
 * last); rejects with CertificateRejection naming the first problem found.
 */
export async function validateChain(
  leaf: ParsedCertificate,
  intermediates: readonly ParsedCertificate[],
  anchors: readonly ParsedCertificate[],
  at: Date,
): Promise<ParsedCertificate[]> {
  if (intermediates.some((c) => c.der.equals(leaf.der))) {
    throw new CertificateRejection('The certificate chain (X-Amz-X509-Chain) must not contain the end-entity certificate');
  }
  // Dates first, so an expired certificate is reported as expired rather than as a broken chain.
  for (const cert of [leaf, ...intermediates]) {
    const notBefore = cert.pkijs.notBefore.value;
    const notAfter = cert.pkijs.notAfter.value;
    const who = cert === leaf ? 'The end-entity certificate' : `The intermediate certificate ${label(cert)}`;
    if (at < notBefore) throw new CertificateRejection(`${who} is not yet valid: it is valid from ${notBefore.toISOString()}`);
    if (at > notAfter) throw new CertificateRejection(`${who} has expired: it was valid until ${notAfter.toISOString()}`);
  }
  const engine = new CertificateChainValidationEngine({
    trustedCerts: anchors.map((a) => a.pkijs),
    // pkijs builds the path from the last certificate of this list.
    certs: [...intermediates.map((c) => c.pkijs), leaf.pkijs],
    checkDate: at,
  });
  let result: { result: boolean; resultMessage?: string; certificatePath?: Certificate[] };
  try {
    result = await engine.verify();
  } catch (err) {
    const message =
      err instanceof Error
        ? err.message
        : typeof err === 'object' && err !== null && 'resultMessage' in err
          ? String(err.resultMessage)
          : String(err);
    throw new CertificateRejection(`Untrusted certificate: no valid chain to the trust anchor (${message})`);
  }
  if (!result.result || result.certificatePath === undefined) {
    throw new CertificateRejection(
      `Untrusted certificate: no valid chain to the trust anchor (${result.resultMessage ?? 'unknown reason'})`,
    );
  }
  // The engine returns the very objects it was given, so they map back by identity.
  const byObject = new Map<Certificate, ParsedCertificate>();
  for (const c of [leaf, ...intermediates, ...anchors]) byObject.set(c.pkijs, c);
  const path = result.certificatePath.map((pk) => {
    const found = byObject.get(pk);
    if (found === undefined) throw new CertificateRejection('Untrusted certificate: the validated path contains an unknown certificate');
    return found;
  });

  // The leaf: must not be a CA, must allow digital signatures, must not use a weak signature.
  const leafBc = basicConstraints(leaf.pkijs);
  if (leafBc.ca) throw new CertificateRejection('The end-entity certificate is a CA certificate (basicConstraints CA:TRUE)');
  const leafKu = keyUsageByte(leaf.pkijs);
  if (leafKu === undefined || (leafKu & KU_DIGITAL_SIGNATURE) === 0) {
    throw new CertificateRejection('The end-entity certificate does not allow digitalSignature in its key usage');
  }
  // Issuers (the anchor too): CA:TRUE, keyCertSign, and path length constraints respected.
  for (let i = 1; i < path.length; i++) {
    const issuer = path[i] as ParsedCertificate;
    const bc = basicConstraints(issuer.pkijs);
    if (!bc.ca) throw new CertificateRejection(`The issuer ${label(issuer)} is not a CA certificate (basicConstraints CA:TRUE missing)`);
    const ku = keyUsageByte(issuer.pkijs);
    if (ku !== undefined && (ku & KU_KEY_CERT_SIGN) === 0)
      throw new CertificateRejection(`The issuer ${label(issuer)} does not allow keyCertSign`);
    // Intermediate CAs between this issuer and the leaf: path[1..i-1].
    const below = i - 1;
    if (bc.pathLen !== undefined && below > bc.pathLen) {
      throw new CertificateRejection(
        `The issuer ${label(issuer)} allows ${bc.pathLen} intermediate CA(s) below it (pathLenConstraint), the chain has ${below}`,
      );
    }
  }
  for (const cert of path.slice(0, -1)) {
    if (WEAK_SIGNATURES.has(cert.pkijs.signatureAlgorithm.algorithmId)) {
      throw new CertificateRejection(`The certificate ${label(cert)} is signed with SHA-1 or MD5, which is not accepted`);
    }
  }
  return path;
}
