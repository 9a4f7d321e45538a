/**
 * A renewed certificate is checked before it replaces the one in use: it must certify the same key,
 * be valid now, allow digitalSignature, and chain (through the intermediates that came with it) to a
 * CA certificate of the configured trust anchor, itself valid now. Anything less is refused and the
 * old certificate stays: a CA that answers with a certificate for another key, an expired intermediate
 * or a page of HTML must never cost the device its credentials.
 */
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkChain, describeCertificate, type CertificateDescription } from '../../../../x509/inspect.js';
import { pemCertificates } from '../../../../x509/pem.js';
import { RenewalError } from './renewal-error.js';

export interface RenewedChain {
  leaf: Uint8Array;
  /** Intermediates in order, leaf and roots excluded: what X-Amz-X509-Chain carries. */
  intermediates: Uint8Array[];
  description: CertificateDescription;
}

/** At most this many certificates in an answer: a real chain has two or three. */
const MAX_CERTIFICATES = 10;

function node(der: Uint8Array): NodeX509Certificate {
  return new NodeX509Certificate(der);
}

function issued(child: Uint8Array, parent: Uint8Array): boolean {
  try {
    const c = node(child);
    const p = node(parent);
    return c.checkIssued(p) && c.verify(p.publicKey);
  } catch {
    return false;
  }
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/** The trust anchor's CA certificates from a PEM file; a RenewalError when there are none. */
export function readTrustAnchor(path: string): Uint8Array[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RenewalError(
      'RenewalMisconfigured',
      `trust anchor certificate ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const ders = pemCertificates(text);
  if (ders.length === 0) throw new RenewalError('RenewalMisconfigured', `trust anchor certificate ${path} holds no PEM CERTIFICATE block`);
  return ders;
}

export function checkRenewedChain(
  pemText: string,
  opts: { spki: Uint8Array; anchors: readonly Uint8Array[]; now: number; from: string },
): RenewedChain {
  const refuse = (why: string): RenewalError => new RenewalError('RenewedCertificateRefused', `the certificate from ${opts.from} ${why}`);
  const ders = pemCertificates(pemText);
  if (ders.length === 0) throw refuse('is not there: the answer holds no PEM CERTIFICATE block');
  if (ders.length > MAX_CERTIFICATES) throw refuse(`comes with ${ders.length} certificates; a chain has a few`);
  const [leaf, ...rest] = ders as [Uint8Array, ...Uint8Array[]];
  let description: CertificateDescription;
  try {
    description = describeCertificate(leaf, { spki: opts.spki });
  } catch {
    throw refuse('is not a valid X.509 certificate');
  }
  if (description.matchesKey !== true) throw refuse(`(${description.subject}) certifies another key, not this profile's`);
  // Roots (self-issued) and copies of the anchor do not travel in X-Amz-X509-Chain: the anchor holds them.
  const intermediates = rest.filter((der) => !issued(der, der) && !opts.anchors.some((a) => same(a, der)));
  const at = new Date(opts.now);
  let problems: string[];
  try {
    problems = checkChain(leaf, intermediates, { at }).problems;
  } catch {
    throw refuse('comes with a chain that does not parse');
  }
  if (problems.length > 0) throw refuse(`is not usable: ${problems.join('; ')}`);
  const top = intermediates.at(-1) ?? leaf;
  const anchor = opts.anchors.find((a) => issued(top, a));
  if (anchor === undefined) throw refuse(`(${description.subject}) does not chain to the configured trust anchor`);
  const a = describeCertificate(anchor);
  if (at < a.notBefore || at > a.notAfter) throw refuse(`chains to a trust anchor certificate (${a.subject}) that is not valid now`);
  return { leaf, intermediates, description };
}
