// Certificate revocation lists imported for a Roles Anywhere trust anchor, as the service keeps them
// (ImportCrl, EnableCrl): the CRL must be signed by a CA certificate of its trust anchor, and once
// enabled, CreateSession refuses any certificate of the validated path whose serial it lists, with
// AccessDeniedException. A disabled CRL is kept but not consulted. Parsing and the signature check are
// @peculiar/x509's; nothing comes from the daemon's CRL writer.

import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { X509Certificate, X509Crl } from '@peculiar/x509';
import { EmulatorConfigError } from './iam.js';
import type { TrustAnchor } from './rolesanywhere-registry.js';
import type { ParsedCertificate } from './x509-verify.js';

export interface ImportCrlSpec {
  trustAnchorArn: string;
  /** DER or PEM ("X509 CRL"). */
  crlData: Uint8Array | string;
  /** Default false, as ImportCrl: a CRL is consulted only once enabled. */
  enabled?: boolean;
  name?: string;
}

export interface ImportedCrl {
  crlId: string;
  trustAnchorArn: string;
  name: string;
  enabled: boolean;
  /** Issuer name (RFC 4514) and the serials it revokes (lower-case hex, no leading zeros). */
  issuer: string;
  revoked: ReadonlySet<string>;
}

/** A copy with its own ArrayBuffer: a pooled Buffer's .buffer holds other bytes around it. */
function toDer(data: Uint8Array | string): Uint8Array {
  if (typeof data !== 'string') return Uint8Array.from(data);
  const m = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+?)-----END X509 CRL-----/.exec(data);
  if (m === null) throw new EmulatorConfigError('ValidationError', 'crlData must be a DER or PEM X509 CRL');
  return Uint8Array.from(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}

const hexOf = (serial: string): string => serial.toLowerCase().replace(/^0+(?=.)/, '');

const issuerOf = (der: Uint8Array): string => new X509Certificate(der).issuer;
const subjectOf = (der: Uint8Array): string => new X509Certificate(der).subject;

export class CrlRegistry {
  private readonly crls = new Map<string, ImportedCrl>();

  async importCrl(spec: ImportCrlSpec, anchor: TrustAnchor | undefined): Promise<ImportedCrl> {
    if (anchor === undefined) throw new EmulatorConfigError('ValidationError', `Trust anchor ${String(spec.trustAnchorArn)} was not found`);
    let crl: X509Crl;
    try {
      crl = new X509Crl(toDer(spec.crlData));
    } catch {
      throw new EmulatorConfigError('ValidationError', 'crlData could not be parsed as an X.509 CRL');
    }
    let signer: ParsedCertificate | undefined;
    for (const ca of anchor.certificates) {
      if (subjectOf(ca.der) !== crl.issuer) continue;
      try {
        if (await crl.verify({ publicKey: new X509Certificate(ca.der).publicKey })) signer = ca;
      } catch {
        // a CA of the same name whose key did not sign it
      }
    }
    if (signer === undefined)
      throw new EmulatorConfigError('ValidationError', 'The CRL is not signed by a CA certificate of the trust anchor');
    const revoked = new Set(crl.entries.map((e) => hexOf(e.serialNumber)));
    const imported: ImportedCrl = {
      crlId: randomUUID(),
      trustAnchorArn: anchor.arn,
      name: spec.name ?? 'crl',
      enabled: spec.enabled === true,
      issuer: crl.issuer,
      revoked,
    };
    this.crls.set(imported.crlId, imported);
    return imported;
  }

  setEnabled(crlId: string, enabled: boolean): void {
    const crl = this.crls.get(crlId);
    if (crl === undefined) throw new EmulatorConfigError('ValidationError', `CRL ${crlId} was not found`);
    this.crls.set(crlId, { ...crl, enabled });
  }

  /** The first certificate of the path (anchor excluded) an enabled CRL of the anchor revokes. */
  revokedIn(anchorArn: string, path: readonly ParsedCertificate[]): ParsedCertificate | undefined {
    const active = [...this.crls.values()].filter((c) => c.enabled && c.trustAnchorArn === anchorArn);
    if (active.length === 0) return undefined;
    for (const cert of path.slice(0, -1)) {
      const issuer = issuerOf(cert.der);
      if (active.some((c) => c.issuer === issuer && c.revoked.has(cert.serialHex))) return cert;
    }
    return undefined;
  }
}
