// IAM Roles Anywhere CreateSession: POST /sessions, signed with SigV4-X509. The signature is checked
// against what arrived (never against anything the client says about itself) with the public key of
// the certificate in X-Amz-X509; the certificate and the intermediates in X-Amz-X509-Chain must chain
// to the trust anchor's CA at the emulator's time; the profile must list the role and the role must
// trust Roles Anywhere. Answers are the service's REST-JSON shapes: 201 with a credentialSet, errors
// as {"message"} with the code in x-amzn-ErrorType.

import { createHash, randomBytes, randomUUID, verify as cryptoVerify } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IamRegistry } from './iam.js';
import { randomBase32 } from './iam.js';
import type { RolesAnywhereRegistry, TrustAnchor } from './rolesanywhere-registry.js';
import { parseRegionalArn } from './rolesanywhere-registry.js';
import {
  MissingSignedHeaderError,
  arrivedRequest,
  canonicalRequestOf,
  parseAmzDate,
  parseAuthorization,
  requestTimeProblem,
  stringToSignOf,
} from './sigv4-verify.js';
import type { ArrivedRequest, ParsedAuthorization } from './sigv4-verify.js';
import type { EmulatorFault, IssuedCredentials } from './sts.js';
import { assumedRoleArn, mintCredentials } from './sts.js';
import { readBody } from './read-body.js';
import { stsTimestamp } from './xml.js';
import { CertificateRejection, parseCertificate, validateChain } from './x509-verify.js';
import type { ParsedCertificate } from './x509-verify.js';
import type { CrlRegistry } from './rolesanywhere-crl.js';

export const SESSIONS_PATH = '/sessions';

export interface RolesAnywhereContext {
  iam: IamRegistry;
  registry: RolesAnywhereRegistry;
  /** CRLs imported for trust anchors; absent: no revocation checks. */
  crls?: CrlRegistry;
  now(): number;
  credentialLifetimeSeconds(): number | null;
  record(credentials: IssuedCredentials): void;
}

export type RolesAnywhereErrorCode = 'AccessDeniedException' | 'ResourceNotFoundException' | 'ValidationException' | string;

/** A CreateSession refusal as the wire carries it. */
export class RolesAnywhereError extends Error {
  override readonly name = 'RolesAnywhereError';
  constructor(
    readonly status: number,
    readonly code: RolesAnywhereErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 64 * 1024;
/** The service accepts a request signed up to five minutes either side of its clock. */
const REQUEST_WINDOW_MS = 5 * 60_000;
const ALGORITHMS = new Set(['AWS4-X509-RSA-SHA256', 'AWS4-X509-ECDSA-SHA256']);
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

const denied = (message: string): RolesAnywhereError => new RolesAnywhereError(403, 'AccessDeniedException', message);
const invalid = (message: string): RolesAnywhereError => new RolesAnywhereError(400, 'ValidationException', message);
const notFound = (message: string): RolesAnywhereError => new RolesAnywhereError(404, 'ResourceNotFoundException', message);

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...extra,
  });
  res.end(text);
}

export function sendRolesAnywhereError(res: ServerResponse, error: RolesAnywhereError): void {
  sendJson(res, error.status, { message: error.message }, { 'x-amzn-errortype': error.code });
}

function header(req: ArrivedRequest, name: string): string | undefined {
  const values = req.headers.get(name);
  return values === undefined ? undefined : values.join(',');
}

function decodeCertificate(b64: string, what: string): ParsedCertificate {
  const trimmed = b64.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) throw denied(`${what} is not base64`);
  try {
    return parseCertificate(Buffer.from(trimmed, 'base64'), what);
  } catch (err) {
    if (err instanceof CertificateRejection) throw denied(err.message);
    throw err;
  }
}

interface SessionParameters {
  profileArn: string;
  roleArn: string;
  trustAnchorArn: string;
  durationSeconds: number | undefined;
  roleSessionName: string | undefined;
}

/** The ARNs may come as query parameters or in the JSON body; the query wins when both carry one. */
function sessionParameters(req: ArrivedRequest): SessionParameters {
  const q = req.rawUrl.indexOf('?');
  const query = new URLSearchParams(q < 0 ? '' : req.rawUrl.slice(q + 1));
  let body: Record<string, unknown> = {};
  if (req.body.length > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(req.body.toString('utf8'));
    } catch {
      throw invalid('The request body is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('The request body must be a JSON object');
    body = parsed as Record<string, unknown>;
  }
  const arn = (name: 'profileArn' | 'roleArn' | 'trustAnchorArn'): string => {
    const value = query.get(name) ?? body[name];
    if (value === undefined || value === null) throw invalid(`${name} is required`);
    if (typeof value !== 'string' || value.length < 1 || value.length > 1011)
      throw invalid(`${name} must be a string of 1 to 1011 characters`);
    return value;
  };
  const profileArn = arn('profileArn');
  const roleArn = arn('roleArn');
  const trustAnchorArn = arn('trustAnchorArn');
  const duration = body.durationSeconds;
  if (duration !== undefined && (typeof duration !== 'number' || !Number.isInteger(duration) || duration < 900 || duration > 43200)) {
    throw invalid('durationSeconds must be an integer from 900 to 43200');
  }
  const name = body.roleSessionName;
  if (name !== undefined && (typeof name !== 'string' || !SESSION_NAME.test(name))) {
    throw invalid('roleSessionName must be 2 to 64 characters of [\\w+=,.@-]');
  }
  return { profileArn, roleArn, trustAnchorArn, durationSeconds: duration, roleSessionName: name };
}

/** The SigV4-X509 checks; resolves with the validated leaf certificate. */
async function authenticate(req: ArrivedRequest, anchor: TrustAnchor, ctx: RolesAnywhereContext): Promise<ParsedCertificate> {
  const auth: ParsedAuthorization | undefined = parseAuthorization(header(req, 'authorization'));
  if (auth === undefined) throw denied('The request is not signed: a SigV4-X509 Authorization header is required');
  if (!ALGORITHMS.has(auth.algorithm)) throw denied(`Unsupported signing algorithm ${auth.algorithm.slice(0, 64)}`);
  const required = ['host', 'x-amz-date', 'x-amz-x509', ...(req.headers.has('x-amz-x509-chain') ? ['x-amz-x509-chain'] : [])];
  const unsigned = required.filter((h) => !auth.signedHeaders.includes(h));
  if (unsigned.length > 0) throw denied(`These headers must be signed: ${unsigned.join(', ')}`);

  const dateText = header(req, 'x-amz-date');
  const dateMs = parseAmzDate(dateText);
  if (dateText === undefined || dateMs === undefined) throw denied('X-Amz-Date must be a timestamp of the form YYYYMMDDTHHMMSSZ');
  const skew = requestTimeProblem(dateMs, ctx.now(), REQUEST_WINDOW_MS);
  if (skew !== undefined) throw denied(skew);
  if (auth.scope.date !== dateText.slice(0, 8))
    throw denied(`Credential should be scoped to a valid date: ${dateText.slice(0, 8)}, not ${auth.scope.date.slice(0, 16)}`);
  if (auth.scope.region !== anchor.region)
    throw denied(`Credential should be scoped to the region of the trust anchor: ${anchor.region}, not ${auth.scope.region.slice(0, 32)}`);
  if (auth.scope.service !== 'rolesanywhere' || auth.scope.terminator !== 'aws4_request') {
    throw denied('Credential should be scoped to the service rolesanywhere and end in aws4_request');
  }

  const leafText = header(req, 'x-amz-x509');
  if (leafText === undefined) throw denied('X-Amz-X509 (the end-entity certificate) is missing');
  const leaf = decodeCertificate(leafText, 'The end-entity certificate (X-Amz-X509)');
  if (!/^\d+$/.test(auth.credential) || BigInt(auth.credential).toString(10) !== leaf.serialDecimal) {
    throw denied('The credential in the Authorization header is not the serial number of the certificate in X-Amz-X509');
  }
  const keyType = leaf.node.publicKey.asymmetricKeyType;
  const expectedAlgorithm = keyType === 'rsa' ? 'AWS4-X509-RSA-SHA256' : keyType === 'ec' ? 'AWS4-X509-ECDSA-SHA256' : undefined;
  if (expectedAlgorithm !== auth.algorithm) throw denied(`A ${keyType ?? 'unknown'} certificate cannot sign with ${auth.algorithm}`);

  let canonical: string;
  try {
    canonical = canonicalRequestOf(req, auth.signedHeaders);
  } catch (err) {
    if (err instanceof MissingSignedHeaderError) throw denied(err.message);
    throw err;
  }
  const toSign = stringToSignOf(auth.algorithm, dateText, auth.scope.text, canonical);
  let valid = false;
  try {
    // ECDSA signatures arrive DER-encoded, which is node's default; RSA is PKCS#1 v1.5, also the default.
    valid = cryptoVerify('sha256', Buffer.from(toSign, 'utf8'), leaf.node.publicKey, Buffer.from(auth.signature, 'hex'));
  } catch {
    valid = false;
  }
  if (!valid) throw denied('Signature is not valid for this request and the certificate in X-Amz-X509');

  const chainText = header(req, 'x-amz-x509-chain');
  const chain =
    chainText === undefined
      ? []
      : chainText.split(',').map((part, i) => decodeCertificate(part, `Certificate ${i + 1} of X-Amz-X509-Chain`));
  let path: ParsedCertificate[];
  try {
    path = await validateChain(leaf, chain, anchor.certificates, new Date(ctx.now()));
  } catch (err) {
    if (err instanceof CertificateRejection) throw denied(err.message);
    throw err;
  }
  // An imported and enabled CRL: a revoked certificate anywhere below the anchor refuses the request.
  const revoked = ctx.crls?.revokedIn(anchor.arn, path);
  if (revoked !== undefined) throw denied(`Certificate revoked: serial ${revoked.serialDecimal} is on the trust anchor's CRL`);
  return leaf;
}

/** A stable per-certificate subject ID, shaped like the service's UUIDs. */
function subjectId(anchor: TrustAnchor, leaf: ParsedCertificate): string {
  const h = createHash('sha256').update(anchor.arn).update(leaf.der).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

async function createSession(req: ArrivedRequest, ctx: RolesAnywhereContext): Promise<unknown> {
  const params = sessionParameters(req);
  const anchor =
    parseRegionalArn(params.trustAnchorArn, 'trust-anchor') === undefined ? undefined : ctx.registry.getTrustAnchor(params.trustAnchorArn);
  if (anchor === undefined) throw notFound(`Trust anchor ${params.trustAnchorArn.slice(0, 200)} was not found`);
  const leaf = await authenticate(req, anchor, ctx);

  const profile = ctx.registry.getProfile(params.profileArn);
  if (profile === undefined) throw notFound(`Profile ${params.profileArn.slice(0, 200)} was not found`);
  if (profile.region !== anchor.region || profile.accountId !== anchor.accountId) {
    throw invalid('The profile and the trust anchor must belong to the same account and region');
  }
  if (!profile.roleArns.includes(params.roleArn)) throw denied(`The profile does not allow the role ${params.roleArn.slice(0, 200)}`);
  const role = ctx.iam.getRole(params.roleArn);
  const trusted =
    role !== undefined && ctx.iam.trustsRolesAnywhere(role, { trustAnchorArn: anchor.arn, subject: leaf.subject, issuer: leaf.issuer });
  if (role === undefined || !trusted) {
    throw denied(
      `Roles Anywhere is not authorized to assume ${params.roleArn.slice(0, 200)}: check the role's trust policy (Principal rolesanywhere.amazonaws.com and its conditions)`,
    );
  }
  const durationSeconds = params.durationSeconds ?? profile.durationSeconds;
  if (durationSeconds > profile.durationSeconds) {
    throw invalid(`durationSeconds ${durationSeconds} exceeds the profile's durationSeconds ${profile.durationSeconds}`);
  }
  if (params.roleSessionName !== undefined && !profile.acceptRoleSessionName) {
    throw invalid('This profile does not accept a custom roleSessionName');
  }
  // The service names the session after the certificate's serial number unless told otherwise.
  const sessionName = params.roleSessionName ?? leaf.serialHex;
  const cn = leaf.subject.get('CN');
  const credentials = mintCredentials(
    {
      roleArn: role.arn,
      durationSeconds,
      subject: leaf.subjectText,
      audience: anchor.arn,
      sessionName,
      via: 'CreateSession',
      certificateSerial: leaf.serialDecimal,
    },
    ctx,
  );
  ctx.record(credentials);
  return {
    credentialSet: [
      {
        assumedRoleUser: { arn: assumedRoleArn(role, sessionName), assumedRoleId: `${role.roleId}:${sessionName}` },
        credentials: {
          accessKeyId: credentials.accessKeyId,
          expiration: stsTimestamp(credentials.expiration),
          secretAccessKey: credentials.secretAccessKey,
          sessionToken: credentials.sessionToken,
        },
        packedPolicySize: 0,
        roleArn: role.arn,
        sourceIdentity: cn === undefined ? leaf.subjectText : `CN=${cn}`,
      },
    ],
    subjectArn: `arn:${anchor.partition}:rolesanywhere:${anchor.region}:${anchor.accountId}:subject/${subjectId(anchor, leaf)}`,
  };
}

/** Answers one request to /sessions; never throws. */
export async function handleRolesAnywhereRequest(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RolesAnywhereContext,
): Promise<{ ok: boolean }> {
  try {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new RolesAnywhereError(405, 'MethodNotAllowedException', 'CreateSession is POST /sessions');
    }
    const body = await readBody(
      req,
      MAX_BODY_BYTES,
      () => new RolesAnywhereError(413, 'PayloadTooLargeException', `Request body exceeds ${MAX_BODY_BYTES} bytes`),
    );
    const result = await createSession(arrivedRequest(req, body), ctx);
    sendJson(res, 201, result);
    return { ok: true };
  } catch (err) {
    if (err instanceof RolesAnywhereError) {
      if (err.status === 413) res.setHeader('connection', 'close');
      sendRolesAnywhereError(res, err);
    } else {
      sendRolesAnywhereError(res, new RolesAnywhereError(500, 'InternalServerException', 'The emulator failed to process the request'));
    }
    return { ok: false };
  }
}

/** Renders a fault in the REST-JSON style; 'delay' is handled by the caller. */
export function writeRolesAnywhereFault(req: IncomingMessage, res: ServerResponse, fault: Exclude<EmulatorFault, { kind: 'delay' }>): void {
  switch (fault.kind) {
    case 'unavailable':
      req.socket.destroy();
      return;
    case 'error':
      sendRolesAnywhereError(res, new RolesAnywhereError(fault.status, fault.code, fault.message));
      return;
    case 'malformed': {
      // A 201 whose body is not what CreateSession returns: a misrouted proxy's page.
      const body = '<html><body>502 Bad Gateway</body></html>\n';
      res.writeHead(201, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    case 'truncated': {
      // A complete HTTP message whose JSON stops in the middle of the credentials.
      const full = JSON.stringify({
        credentialSet: [
          {
            credentials: {
              accessKeyId: `ASIA${randomBase32(16)}`,
              secretAccessKey: randomBytes(30).toString('base64'),
              sessionToken: randomBytes(384).toString('base64'),
              expiration: stsTimestamp(new Date(0)),
            },
          },
        ],
      });
      const body = full.slice(0, full.indexOf('"secretAccessKey"') + 30);
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
  }
}
