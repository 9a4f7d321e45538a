// AWS Private CA, the two calls certificate renewal makes: IssueCertificate and GetCertificate, JSON 1.1
// (POST / with X-Amz-Target ACMPrivateCA.<Operation>), signed with SigV4 (AWS4-HMAC-SHA256) by
// credentials this emulator issued (Roles Anywhere sessions among them). The signature, the session
// token, the credentials' expiry and the request time are all checked as the service does, and the
// calling role must be allowed on the CA (the stand-in for an IAM policy granting acm-pca:*).
// The CSR's own signature is verified before anything is issued; the certificate is built from the
// CSR's key and subject, signed by the CA's key, with the validity asked for (capped by the CA's).

import 'reflect-metadata';
import { createPrivateKey, randomBytes, randomUUID, webcrypto, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Pkcs10CertificateRequest,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { EmulatorConfigError } from './iam.js';
import { readBody } from './read-body.js';
import { arrivedRequest, headerOf, parseAmzDate, parseAuthorization, verifySessionSignature } from './sigv4-verify.js';
import type { ArrivedRequest } from './sigv4-verify.js';
import type { IssuedCredentials } from './sts.js';

export const ACM_PCA_TARGET_PREFIX = 'ACMPrivateCA.';

export interface PrivateCaSpec {
  /** arn:aws:acm-pca:<region>:<account>:certificate-authority/<uuid> */
  arn: string;
  /** The CA's certificate (PEM) and its private key (PEM PKCS#8, EC P-256 or RSA). */
  certificatePem: string;
  privateKeyPem: string;
  /** Roles whose sessions may call IssueCertificate and GetCertificate on this CA. */
  allowedRoleArns: string[];
}

export interface AcmPcaContext {
  now(): number;
  lookup(accessKeyId: string): IssuedCredentials | undefined;
  authorities: Map<string, PrivateCa>;
}

export interface PrivateCa {
  arn: string;
  region: string;
  certificate: X509Certificate;
  certificatePem: string;
  key: KeyObject;
  allowedRoleArns: readonly string[];
  /** CertificateArn -> PEM. */
  issued: Map<string, string>;
}

const MAX_BODY_BYTES = 64 * 1024;
const SIGV4_WINDOW_MS = 5 * 60_000;
const CA_ARN = /^arn:aws[a-z-]*:acm-pca:([a-z0-9-]+):\d{12}:certificate-authority\/[0-9a-f-]{36}$/;

class PcaError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function createPrivateCa(spec: PrivateCaSpec): PrivateCa {
  const m = CA_ARN.exec(spec.arn ?? '');
  if (m === null)
    throw new EmulatorConfigError(
      'ValidationError',
      `Private CA ARN must look like arn:aws:acm-pca:<region>:<account>:certificate-authority/<uuid>: ${String(spec.arn)}`,
    );
  let certificate: X509Certificate;
  let key: KeyObject;
  try {
    certificate = new X509Certificate(spec.certificatePem);
    key = createPrivateKey(spec.privateKeyPem);
  } catch {
    throw new EmulatorConfigError('ValidationError', 'certificatePem and privateKeyPem must be a PEM certificate and a PEM private key');
  }
  return {
    arn: spec.arn,
    region: m[1] ?? '',
    certificate,
    certificatePem: spec.certificatePem,
    key,
    allowedRoleArns: Object.freeze([...spec.allowedRoleArns]),
    issued: new Map(),
  };
}

/** SigV4 verification against the credentials this emulator issued, with the service's error codes. */
function authenticate(req: ArrivedRequest, ctx: AcmPcaContext): IssuedCredentials {
  const auth = parseAuthorization(headerOf(req, 'authorization'));
  if (auth === undefined || auth.algorithm !== 'AWS4-HMAC-SHA256') {
    throw new PcaError(400, 'IncompleteSignatureException', 'The request must be signed with AWS4-HMAC-SHA256');
  }
  if (auth.scope.service !== 'acm-pca' || auth.scope.terminator !== 'aws4_request') {
    throw new PcaError(403, 'InvalidSignatureException', `Credential should be scoped to correct service: 'acm-pca'`);
  }
  for (const h of ['host', 'x-amz-date', 'x-amz-target']) {
    if (!auth.signedHeaders.includes(h)) throw new PcaError(403, 'InvalidSignatureException', `The ${h} header must be signed`);
  }
  const dateText = headerOf(req, 'x-amz-date');
  const dateMs = parseAmzDate(dateText);
  if (dateText === undefined || dateMs === undefined)
    throw new PcaError(400, 'IncompleteSignatureException', 'X-Amz-Date is missing or malformed');
  if (auth.scope.date !== dateText.slice(0, 8))
    throw new PcaError(403, 'InvalidSignatureException', 'Credential should be scoped to a valid date');
  return verifySessionSignature(
    req,
    auth,
    { text: dateText, ms: dateMs },
    {
      lookup: (id) => ctx.lookup(id),
      now: () => ctx.now(),
      windowMs: SIGV4_WINDOW_MS,
      refuse: (kind, detail) => {
        if (kind === 'unknown-token') return new PcaError(400, 'UnrecognizedClientException', detail);
        if (kind === 'expired') return new PcaError(400, 'ExpiredTokenException', detail);
        if (kind === 'stale') return new PcaError(400, 'InvalidSignatureException', detail);
        if (kind === 'mismatch')
          return new PcaError(
            400,
            'InvalidSignatureException',
            'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
          );
        return new PcaError(403, 'InvalidSignatureException', detail);
      },
    },
  );
}

function authority(ctx: AcmPcaContext, body: Record<string, unknown>, caller: IssuedCredentials, action: string): PrivateCa {
  const arn = body.CertificateAuthorityArn;
  if (typeof arn !== 'string') throw new PcaError(400, 'ValidationException', 'CertificateAuthorityArn is required');
  const ca = ctx.authorities.get(arn);
  if (ca === undefined) throw new PcaError(400, 'ResourceNotFoundException', `Could not find certificate authority ${arn.slice(0, 200)}`);
  if (!ca.allowedRoleArns.includes(caller.roleArn)) {
    throw new PcaError(
      400,
      'AccessDeniedException',
      `User: ${caller.roleArn} is not authorized to perform: acm-pca:${action} on resource: ${arn}`,
    );
  }
  return ca;
}

const SIGNING: Record<string, { name: string; hash: string }> = {
  SHA256WITHECDSA: { name: 'ECDSA', hash: 'SHA-256' },
  SHA384WITHECDSA: { name: 'ECDSA', hash: 'SHA-384' },
  SHA512WITHECDSA: { name: 'ECDSA', hash: 'SHA-512' },
  SHA256WITHRSA: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  SHA384WITHRSA: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
  SHA512WITHRSA: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' },
};

function validityEnd(v: unknown, now: number): number {
  if (typeof v !== 'object' || v === null) throw new PcaError(400, 'ValidationException', 'Validity is required');
  const { Type, Value } = v as { Type?: unknown; Value?: unknown };
  if (typeof Value !== 'number' || !Number.isInteger(Value) || Value <= 0)
    throw new PcaError(400, 'ValidationException', 'Validity.Value must be a positive integer');
  switch (Type) {
    case 'ABSOLUTE':
      return Value * 1000;
    case 'DAYS':
      return now + Value * 86_400_000;
    case 'MONTHS':
      return now + Value * 30 * 86_400_000;
    case 'YEARS':
      return now + Value * 365 * 86_400_000;
    default:
      throw new PcaError(400, 'ValidationException', 'Validity.Type must be ABSOLUTE, DAYS, MONTHS or YEARS');
  }
}

async function issueCertificate(ctx: AcmPcaContext, body: Record<string, unknown>, caller: IssuedCredentials): Promise<unknown> {
  const ca = authority(ctx, body, caller, 'IssueCertificate');
  const signing = typeof body.SigningAlgorithm === 'string' ? SIGNING[body.SigningAlgorithm] : undefined;
  if (signing === undefined) throw new PcaError(400, 'ValidationException', 'SigningAlgorithm is missing or unknown');
  const caIsEc = ca.key.asymmetricKeyType === 'ec';
  if (caIsEc !== (signing.name === 'ECDSA'))
    throw new PcaError(400, 'InvalidArgsException', 'The signing algorithm does not match the CA key');
  if (typeof body.Csr !== 'string') throw new PcaError(400, 'ValidationException', 'Csr is required');
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(Buffer.from(body.Csr, 'base64').toString('utf8'));
  } catch {
    throw new PcaError(400, 'MalformedCSRException', 'The CSR is not a PEM PKCS#10 request');
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new PcaError(400, 'MalformedCSRException', 'The CSR signature does not verify');
  const now = ctx.now();
  const end = validityEnd(body.Validity, now);
  if (end <= now) throw new PcaError(400, 'ValidationException', 'The validity must end in the future');
  if (end > ca.certificate.notAfter.getTime())
    throw new PcaError(400, 'ValidationException', 'The validity extends past the CA certificate');
  const alg =
    ca.key.asymmetricKeyType === 'ec' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: signing.hash };
  const signingKey = await webcrypto.subtle.importKey('pkcs8', ca.key.export({ type: 'pkcs8', format: 'der' }), alg, false, ['sign']);
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  const cert = await X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: csr.subjectName,
    issuer: ca.certificate.subjectName,
    notBefore: new Date(Math.floor(now / 1000) * 1000),
    notAfter: new Date(end),
    publicKey: csr.publicKey,
    signingKey,
    signingAlgorithm: signing,
    extensions: [
      new BasicConstraintsExtension(false, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment, true),
      new ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2'], false),
      await SubjectKeyIdentifierExtension.create(csr.publicKey),
      await AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
    ],
  });
  const certificateArn = `${ca.arn}/certificate/${randomBytes(16).toString('hex')}`;
  ca.issued.set(certificateArn, cert.toString('pem'));
  return { CertificateArn: certificateArn };
}

function getCertificate(ctx: AcmPcaContext, body: Record<string, unknown>, caller: IssuedCredentials): unknown {
  const ca = authority(ctx, body, caller, 'GetCertificate');
  const arn = body.CertificateArn;
  if (typeof arn !== 'string') throw new PcaError(400, 'ValidationException', 'CertificateArn is required');
  const pem = ca.issued.get(arn);
  if (pem === undefined) throw new PcaError(400, 'ResourceNotFoundException', `Could not find certificate ${arn.slice(0, 300)}`);
  // A root CA's chain is the CA certificate itself, as the service answers.
  return { Certificate: pem, CertificateChain: ca.certificatePem.trim() };
}

function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...extra,
  });
  res.end(text);
}

/** Answers one JSON 1.1 request whose X-Amz-Target starts with ACMPrivateCA.; never throws. */
export async function handleAcmPcaRequest(req: IncomingMessage, res: ServerResponse, ctx: AcmPcaContext): Promise<{ ok: boolean }> {
  try {
    if (req.method !== 'POST') throw new PcaError(405, 'MethodNotAllowed', 'JSON 1.1 requests are POST /');
    const raw = await readBody(
      req,
      MAX_BODY_BYTES,
      () => new PcaError(413, 'RequestEntityTooLarge', `Request body exceeds ${MAX_BODY_BYTES} bytes`),
    );
    const arrived = arrivedRequest(req, raw);
    const caller = authenticate(arrived, ctx);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new PcaError(400, 'SerializationException', 'The request body is not JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new PcaError(400, 'SerializationException', 'The request body must be a JSON object');
    const target = headerOf(arrived, 'x-amz-target') ?? '';
    const operation = target.slice(ACM_PCA_TARGET_PREFIX.length);
    const b = body as Record<string, unknown>;
    const result =
      operation === 'IssueCertificate'
        ? await issueCertificate(ctx, b, caller)
        : operation === 'GetCertificate'
          ? getCertificate(ctx, b, caller)
          : (() => {
              throw new PcaError(400, 'UnknownOperationException', `The emulator does not implement ${operation.slice(0, 64)}`);
            })();
    send(res, 200, result);
    return { ok: true };
  } catch (err) {
    const e = err instanceof PcaError ? err : new PcaError(500, 'InternalFailure', 'The emulator failed to process the request');
    send(res, e.status, { __type: e.code, message: e.message }, { 'x-amzn-errortype': e.code });
    return { ok: false };
  }
}
