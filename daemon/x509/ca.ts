/**
 * A small local CA for IAM Roles Anywhere: one key and one self-signed certificate in a directory, then
 * leaf certificates issued from CSRs. Meant for a team without a PKI, a lab or a demo; the CA
 * certificate is what the Roles Anywhere trust anchor holds.
 *
 * The CA key is created 0600 and refused when anyone else could read it; nothing is ever overwritten.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, constants, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Pkcs10CertificateRequest, X509Certificate } from './x509-lib.js';
import { createSecretFile, ensurePrivateDir, readSecretFile } from '../util/secure-file.js';
import { buildCertificate, randomSerialHex } from './certificate-builder.js';

export class CaError extends Error {
  override readonly name = 'CaError';
}

export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.pem';

export interface InitCaOptions {
  dir: string;
  /** RFC 4514, e.g. "CN=Example device CA, O=Example". */
  subject: string;
  days: number;
  /** Default ec-p256. */
  keyType?: 'ec-p256' | 'rsa-2048' | 'rsa-3072';
  now?: () => number;
}

export interface InitCaResult {
  certPath: string;
  keyPath: string;
  certificatePem: string;
  subject: string;
  serialHex: string;
  notAfter: Date;
}

export interface IssueOptions {
  caDir: string;
  csrPem: string;
  days: number;
  /**
   * Whole lifetime in ms (notBefore to notAfter, backdating included) instead of `days`: short-lived
   * certificates. A renewal that asks for the lifetime of the certificate it replaces thus gets the same.
   */
  validityMs?: number;
  /** Where to write the certificate (never overwritten); omitted: only returned. */
  outPath?: string;
  now?: () => number;
}

export interface IssueResult {
  certificatePem: string;
  subject: string;
  serialHex: string;
  serialDecimal: string;
  notBefore: Date;
  notAfter: Date;
  path?: string;
}

const DAY_MS = 86_400_000;
/** Backdating absorbs clocks a few minutes behind: a certificate must not be "not yet valid" on arrival. */
const BACKDATE_MS = 5 * 60_000;

function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 3650 * 3) throw new CaError(`days must be a whole number from 1 to 10950, not ${days}`);
}

/** Writes a public file (0644), failing if it exists. */
function createPublicFile(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CaError(`${path} already exists; credport never overwrites it`);
    throw err;
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function newKey(type: NonNullable<InitCaOptions['keyType']>): KeyObject {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'rsa-3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    default:
      throw new CaError(`unknown key type ${String(type)}`);
  }
}

export async function initCa(opts: InitCaOptions): Promise<InitCaResult> {
  checkDays(opts.days);
  const keyPath = join(opts.dir, CA_KEY_FILE);
  const certPath = join(opts.dir, CA_CERT_FILE);
  for (const p of [keyPath, certPath]) {
    if (existsSync(p)) throw new CaError(`${p} already exists; credport never overwrites a CA`);
  }
  ensurePrivateDir(opts.dir);
  const privateKey = newKey(opts.keyType ?? 'ec-p256');
  const now = (opts.now ?? Date.now)();
  let cert: X509Certificate;
  try {
    cert = await buildCertificate({
      subject: opts.subject,
      publicKey: privateKey,
      issuer: { privateKey },
      serialHex: randomSerialHex(),
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + opts.days * DAY_MS),
      // pathLen 0: this CA signs device certificates only, never another CA.
      ca: { pathLength: 0 },
      keyUsage: ['keyCertSign', 'cRLSign'],
    });
  } catch (err) {
    throw new CaError(`cannot create the CA certificate: ${(err as Error).message}`);
  }
  try {
    createSecretFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CaError(`${keyPath} already exists; credport never overwrites a CA`);
    throw err;
  }
  const pem = cert.toString('pem');
  createPublicFile(certPath, `${pem}\n`);
  return { certPath, keyPath, certificatePem: pem, subject: cert.subject, serialHex: cert.serialNumber, notAfter: cert.notAfter };
}

export function loadCa(caDir: string): { key: KeyObject; cert: X509Certificate; certPem: string } {
  const keyPath = join(caDir, CA_KEY_FILE);
  const certPath = join(caDir, CA_CERT_FILE);
  // readSecretFile refuses a key that is group/world readable or owned by someone else.
  const keyPem = readSecretFile(keyPath, 'CA key', "create a CA with 'credport ca init'");
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new CaError(`CA key ${keyPath} is not a PEM private key`);
  }
  let certPem: string;
  try {
    certPem = readFileSync(certPath, 'utf8');
  } catch {
    throw new CaError(`CA certificate ${certPath} cannot be read`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new CaError(`CA certificate ${certPath} is not a PEM certificate`);
  }
  return { key, cert, certPem };
}

/** Issues a device (end-entity) certificate for a CSR whose signature verifies. */
export async function issueCertificate(opts: IssueOptions): Promise<IssueResult> {
  checkDays(opts.days);
  if (opts.outPath !== undefined && existsSync(opts.outPath))
    throw new CaError(`${opts.outPath} already exists; credport never overwrites it`);
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(opts.csrPem);
  } catch {
    throw new CaError('the CSR is not a PEM or DER PKCS#10 certificate request');
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new CaError('the CSR signature does not verify: it was not signed by the key it names');
  if (csr.subject === '') throw new CaError('the CSR has an empty subject');
  const ca = loadCa(opts.caDir);
  const now = (opts.now ?? Date.now)();
  if (opts.validityMs !== undefined && (!Number.isFinite(opts.validityMs) || opts.validityMs < 60_000)) {
    throw new CaError('a certificate must live at least one minute');
  }
  const backdate = opts.validityMs === undefined ? BACKDATE_MS : Math.min(BACKDATE_MS, Math.floor(opts.validityMs / 10));
  const notBefore = new Date(now - backdate);
  const end = opts.validityMs === undefined ? now + opts.days * DAY_MS : notBefore.getTime() + opts.validityMs;
  const notAfter = new Date(Math.min(end, ca.cert.notAfter.getTime()));
  const cert = await buildCertificate({
    subject: csr.subject,
    publicKey: new Uint8Array(csr.publicKey.rawData),
    issuer: { privateKey: ca.key, certificatePem: ca.certPem },
    serialHex: randomSerialHex(),
    notBefore,
    notAfter,
    ca: false,
    keyUsage: ['digitalSignature'],
  });
  const pem = cert.toString('pem');
  if (opts.outPath !== undefined) createPublicFile(opts.outPath, `${pem}\n`);
  const serialHex = cert.serialNumber.toLowerCase();
  return {
    certificatePem: pem,
    subject: cert.subject,
    serialHex,
    serialDecimal: BigInt(`0x${serialHex}`).toString(10),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    ...(opts.outPath !== undefined ? { path: opts.outPath } : {}),
  };
}
