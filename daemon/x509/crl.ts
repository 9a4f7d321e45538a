/**
 * Revocation for the built-in CA: `credport ca revoke` records a serial in the CA directory, `credport
 * ca crl` writes a CRL listing every revoked serial, signed by the CA key, with a nextUpdate and a CRL
 * number one higher than the last one issued (RFC 5280: relying parties keep the highest they saw).
 * The state (revoked.json) and the CRL (crl.pem) are public and written atomically beside ca.pem; the
 * CA key stays the only secret in the directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/secure-file.js';
import { CaError, loadCa } from './ca.js';
import { signingKeyOf } from './certificate-builder.js';
import { pemCertificates } from './pem.js';
import {
  AuthorityKeyIdentifierExtension,
  Extension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CrlGenerator,
} from './x509-lib.js';

export const REVOKED_FILE = 'revoked.json';
export const CRL_FILE = 'crl.pem';
const CRL_NUMBER_OID = '2.5.29.20';
const DAY_MS = 86_400_000;

interface RevocationState {
  revoked: Array<{ serialHex: string; revokedAt: string }>;
  /** The number of the last CRL issued; 0 before the first. */
  crlNumber: number;
}

function readState(caDir: string): RevocationState {
  const path = join(caDir, REVOKED_FILE);
  if (!existsSync(path)) return { revoked: [], crlNumber: 0 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new CaError(`${path} is not the JSON credport wrote; restore it from a backup (the CRL number must never go back)`);
  }
  const s = parsed as Partial<RevocationState>;
  if (!Array.isArray(s.revoked) || !Number.isSafeInteger(s.crlNumber) || (s.crlNumber ?? -1) < 0) {
    throw new CaError(`${path} is not the JSON credport wrote; restore it from a backup (the CRL number must never go back)`);
  }
  return {
    revoked: s.revoked.filter((r) => typeof r?.serialHex === 'string' && /^[0-9a-f]+$/.test(r.serialHex)),
    crlNumber: s.crlNumber as number,
  };
}

function writeState(caDir: string, state: RevocationState): void {
  writeFileAtomic(join(caDir, REVOKED_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

/** A serial in decimal, 0x-hex or colon-separated hex, or a certificate file: lower-case hex without leading zeros. */
export function serialFrom(input: string, caCert?: X509Certificate): string {
  const t = input.trim();
  if (/^\d+$/.test(t)) return BigInt(t).toString(16);
  if (/^0x[0-9a-f]+$/i.test(t)) return BigInt(t).toString(16);
  if (/^[0-9a-f]{2}(:[0-9a-f]{2})+$/i.test(t)) return BigInt(`0x${t.replace(/:/g, '')}`).toString(16);
  let text: string;
  try {
    text = readFileSync(t, 'utf8');
  } catch {
    throw new CaError(`${input} is neither a serial number (decimal, 0x-hex or aa:bb:.. hex) nor a readable certificate file`);
  }
  const [der] = pemCertificates(text);
  if (der === undefined) throw new CaError(`${input} holds no PEM certificate`);
  const cert = new X509Certificate(der);
  if (caCert !== undefined && cert.issuer !== caCert.subject)
    throw new CaError(`${input} was issued by ${cert.issuer}, not by this CA (${caCert.subject})`);
  return BigInt(`0x${cert.serialNumber}`).toString(16);
}

export interface RevokeResult {
  serialHex: string;
  serialDecimal: string;
  alreadyRevoked: boolean;
}

export function revokeCertificate(caDir: string, serialOrCert: string, now: number = Date.now()): RevokeResult {
  const ca = loadCa(caDir);
  const serialHex = serialFrom(serialOrCert, ca.cert);
  const state = readState(caDir);
  const alreadyRevoked = state.revoked.some((r) => r.serialHex === serialHex);
  if (!alreadyRevoked) {
    state.revoked.push({ serialHex, revokedAt: new Date(now).toISOString() });
    writeState(caDir, state);
  }
  return { serialHex, serialDecimal: BigInt(`0x${serialHex}`).toString(10), alreadyRevoked };
}

function derInteger(n: number): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Uint8Array.from([0x02, bytes.length, ...bytes]);
}

export interface CrlResult {
  pem: string;
  der: Uint8Array;
  crlNumber: number;
  revoked: number;
  thisUpdate: Date;
  nextUpdate: Date;
  path: string;
}

/** Issues the next CRL: every revoked serial, signed by the CA, number = last + 1; writes crl.pem. */
export async function issueCrl(caDir: string, opts: { days?: number; now?: number } = {}): Promise<CrlResult> {
  const days = opts.days ?? 7;
  if (!Number.isInteger(days) || days < 1 || days > 366) throw new CaError(`days must be a whole number from 1 to 366, not ${days}`);
  const ca = loadCa(caDir);
  const state = readState(caDir);
  const now = opts.now ?? Date.now();
  const crlNumber = state.crlNumber + 1;
  const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + days * DAY_MS);
  const ski = ca.cert.getExtension(SubjectKeyIdentifierExtension);
  const aki = ski ? new AuthorityKeyIdentifierExtension(ski.keyId) : await AuthorityKeyIdentifierExtension.create(ca.cert.publicKey);
  const { key, algorithm } = await signingKeyOf(ca.key);
  const crl = await X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate,
    nextUpdate,
    signingKey: key,
    signingAlgorithm: algorithm,
    extensions: [aki, new Extension(CRL_NUMBER_OID, false, derInteger(crlNumber))],
    entries: state.revoked.map((r) => ({
      serialNumber: r.serialHex.length % 2 ? `0${r.serialHex}` : r.serialHex,
      revocationDate: new Date(r.revokedAt),
    })),
  });
  // The number is spent before the CRL is written: a crash in between skips a number, never reuses one.
  writeState(caDir, { ...state, crlNumber });
  // RFC 7468's label, which OpenSSL and the AWS tools read; the library writes a shorter one.
  const b64 = Buffer.from(crl.rawData)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  const pem = `-----BEGIN X509 CRL-----\n${b64}\n-----END X509 CRL-----`;
  const path = join(caDir, CRL_FILE);
  writeFileAtomic(path, `${pem}\n`, 0o644);
  return { pem, der: new Uint8Array(crl.rawData), crlNumber, revoked: state.revoked.length, thisUpdate, nextUpdate, path };
}
