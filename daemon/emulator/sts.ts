// The STS Query API, as far as credport uses it: POST / with a form-encoded AssumeRoleWithWebIdentity.
// Parameters are checked the way STS checks them (and reported in its "N validation errors detected"
// style), the token is verified by oidc-verify, the role's trust policy by iam, and only then are
// credentials minted. Injected faults are rendered here too, since they are about the wire.

import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IamRegistry, Role } from './iam.js';
import { randomBase32 } from './iam.js';
import { verifyWebIdentityToken } from './oidc-verify.js';
import type { VerifiedWebIdentity } from './oidc-verify.js';
import { StsError, errorBody, successBody } from './xml.js';
import type { StsFaultType } from './xml.js';

export type EmulatorFault =
  | { kind: 'unavailable' }
  | { kind: 'error'; status: number; code: string; message: string; type?: StsFaultType }
  | { kind: 'delay'; ms: number }
  | { kind: 'malformed' }
  | { kind: 'truncated' };

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  roleArn: string;
  subject: string;
  audience: string;
  sessionName: string;
}

export interface StsContext {
  iam: IamRegistry;
  now(): number;
  clockSkewSeconds: number;
  /** Test override of the credential lifetime in seconds; null means "as requested". */
  credentialLifetimeSeconds(): number | null;
  record(credentials: IssuedCredentials): void;
}

export const STS_VERSION = '2011-06-15';
/** Real STS bodies are a few KiB at most (the token is capped at 20000 characters). */
export const MAX_BODY_BYTES = 64 * 1024;

const DEFAULT_DURATION_SECONDS = 3600;
const MIN_DURATION_SECONDS = 900;
const MAX_DURATION_SECONDS = 43200;
const SESSION_NAME_PATTERN = /^[\w+=,.@-]*$/;
const ACCESS_DENIED = 'Not authorized to perform sts:AssumeRoleWithWebIdentity';

export interface StsOutcome { ok: boolean }

function sendXml(res: ServerResponse, status: number, body: string, requestId: string): void {
  res.writeHead(status, {
    'content-type': 'text/xml',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}

export function sendStsError(res: ServerResponse, error: StsError, requestId: string = randomUUID()): void {
  sendXml(res, error.status, errorBody(error, requestId), requestId);
}

/**
 * Reads the form body, refusing (413) before buffering more than the limit. The rest of an oversized
 * body is left to flow into nothing rather than destroying the request, so the 413 still reaches the
 * client; the response then closes the connection.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = (): StsError => new StsError(413, 'RequestEntityTooLarge', `Request body exceeds ${limit} bytes`);
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > limit) {
        stop();
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => {
      stop();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function isFormEncoded(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  return typeof type === 'string' && type.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

interface AssumeRequest { roleArn: string; sessionName: string; token: string; durationSeconds: number }

/** STS's own constraint checks, collected so one response names every problem, as STS does. */
function validateParameters(params: URLSearchParams): AssumeRequest {
  const problems: string[] = [];
  const nullValue = (field: string): void => { problems.push(`Value null at '${field}' failed to satisfy constraint: Member must not be null`); };
  const bad = (field: string, shown: string | null, constraint: string): void => {
    problems.push(`Value ${shown === null ? '' : `'${shown}' `}at '${field}' failed to satisfy constraint: ${constraint}`);
  };
  const lengthBetween = (field: string, value: string, min: number, max: number, show: boolean): void => {
    const shown = show ? value : null;
    if (value.length < min) bad(field, shown, `Member must have length greater than or equal to ${min}`);
    else if (value.length > max) bad(field, shown, `Member must have length less than or equal to ${max}`);
  };

  const roleArn = params.get('RoleArn');
  if (roleArn === null) nullValue('roleArn');
  else lengthBetween('roleArn', roleArn, 20, 2048, true);

  const sessionName = params.get('RoleSessionName');
  if (sessionName === null) nullValue('roleSessionName');
  else {
    lengthBetween('roleSessionName', sessionName, 2, 64, true);
    if (!SESSION_NAME_PATTERN.test(sessionName)) {
      bad('roleSessionName', sessionName, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
    }
  }

  // The token is never echoed back, not even in an error.
  const token = params.get('WebIdentityToken');
  if (token === null) nullValue('webIdentityToken');
  else lengthBetween('webIdentityToken', token, 4, 20000, false);

  const rawDuration = params.get('DurationSeconds');
  let durationSeconds = DEFAULT_DURATION_SECONDS;
  if (rawDuration !== null) {
    durationSeconds = /^\d{1,9}$/.test(rawDuration) ? Number(rawDuration) : Number.NaN;
    if (Number.isNaN(durationSeconds)) bad('durationSeconds', rawDuration, 'Member must be an integer');
    else if (durationSeconds < MIN_DURATION_SECONDS) bad('durationSeconds', rawDuration, `Member must have value greater than or equal to ${MIN_DURATION_SECONDS}`);
    else if (durationSeconds > MAX_DURATION_SECONDS) bad('durationSeconds', rawDuration, `Member must have value less than or equal to ${MAX_DURATION_SECONDS}`);
  }

  if (problems.length > 0) {
    const count = problems.length === 1 ? '1 validation error' : `${problems.length} validation errors`;
    throw new StsError(400, 'ValidationError', `${count} detected: ${problems.join('; ')}`);
  }
  if (roleArn === null || sessionName === null || token === null) throw new Error('unreachable: validated above');
  if (!/^arn:[\w-]+:iam::\d{12}:role\/\S+$/.test(roleArn)) {
    throw new StsError(400, 'ValidationError', 'Request ARN is invalid');
  }
  return { roleArn, sessionName, token, durationSeconds };
}

function mintCredentials(role: Role, request: AssumeRequest, identity: VerifiedWebIdentity, ctx: StsContext): IssuedCredentials {
  const lifetime = ctx.credentialLifetimeSeconds() ?? request.durationSeconds;
  // Whole seconds, so the Date recorded here equals what the XML (and so the client) says.
  const expiresMs = Math.floor(ctx.now() / 1000) * 1000 + lifetime * 1000;
  return {
    accessKeyId: `ASIA${randomBase32(16)}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: randomBytes(384).toString('base64'),
    expiration: new Date(expiresMs),
    roleArn: role.arn,
    subject: identity.subject,
    audience: identity.audience,
    sessionName: request.sessionName,
  };
}

async function assumeRoleWithWebIdentity(params: URLSearchParams, ctx: StsContext, requestId: string): Promise<string> {
  const request = validateParameters(params);
  const identity = await verifyWebIdentityToken(request.token, {
    findProvider: (issuer) => ctx.iam.findProvider(issuer),
    now: ctx.now,
    clockSkewSeconds: ctx.clockSkewSeconds,
  });
  // Unknown role and untrusted role answer alike, so callers cannot probe which roles exist.
  const role = ctx.iam.getRole(request.roleArn);
  if (role === undefined || !ctx.iam.trusts(role, identity)) throw new StsError(403, 'AccessDenied', ACCESS_DENIED);
  if (request.durationSeconds > role.maxSessionDurationSeconds) {
    throw new StsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  }
  const credentials = mintCredentials(role, request, identity, ctx);
  ctx.record(credentials);
  return successBody({
    subject: identity.subject,
    audience: identity.audience,
    assumedRoleArn: `arn:${role.partition}:sts::${role.accountId}:assumed-role/${role.name}/${request.sessionName}`,
    assumedRoleId: `${role.roleId}:${request.sessionName}`,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    expiration: credentials.expiration,
    provider: identity.provider.hostPath,
  }, requestId);
}

async function dispatch(params: URLSearchParams, ctx: StsContext, requestId: string): Promise<string> {
  const action = params.get('Action');
  if (action === null || action === '') throw new StsError(400, 'MissingAction', 'Missing Action');
  const version = params.get('Version');
  if (version === null || version === '') throw new StsError(400, 'MissingParameter', 'The request must contain the parameter Version');
  if (action !== 'AssumeRoleWithWebIdentity' || version !== STS_VERSION) {
    throw new StsError(400, 'InvalidAction', `Could not find operation ${action} for version ${version}`);
  }
  return assumeRoleWithWebIdentity(params, ctx, requestId);
}

/** Answers one STS request; never throws. */
export async function handleStsRequest(req: IncomingMessage, res: ServerResponse, ctx: StsContext): Promise<StsOutcome> {
  const requestId = randomUUID();
  try {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new StsError(405, 'MethodNotAllowed', 'The STS Query API is served on POST /');
    }
    if (!isFormEncoded(req)) {
      throw new StsError(400, 'MissingAction', 'Expected a body of type application/x-www-form-urlencoded');
    }
    const params = new URLSearchParams(await readBody(req, MAX_BODY_BYTES));
    const body = await dispatch(params, ctx, requestId);
    sendXml(res, 200, body, requestId);
    return { ok: true };
  } catch (err) {
    if (err instanceof StsError) {
      // A refused body is not read to the end; close instead of letting the client send the rest.
      if (err.status === 413) res.setHeader('connection', 'close');
      sendStsError(res, err, requestId);
    } else {
      sendStsError(res, new StsError(500, 'InternalFailure', 'The emulator failed to process the request', 'Receiver'), requestId);
    }
    return { ok: false };
  }
}

/** Plausible credentials for bodies that must never parse, so they are not worth recording. */
function placeholderBody(): string {
  return successBody({
    subject: 'placeholder', audience: 'placeholder',
    assumedRoleArn: 'arn:aws:sts::000000000000:assumed-role/placeholder/placeholder',
    assumedRoleId: 'AROAPLACEHOLDER:placeholder',
    accessKeyId: `ASIA${randomBase32(16)}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: randomBytes(384).toString('base64'),
    expiration: new Date(0),
    provider: 'placeholder',
  }, randomUUID());
}

/** Renders a fault that replaces the answer. 'delay' is not one: the caller waits, then answers normally. */
export function writeFault(req: IncomingMessage, res: ServerResponse, fault: Exclude<EmulatorFault, { kind: 'delay' }>): void {
  switch (fault.kind) {
    case 'unavailable':
      req.socket.destroy();
      return;
    case 'error': {
      const error = new StsError(fault.status, fault.code, fault.message, fault.type);
      sendStsError(res, error);
      return;
    }
    case 'malformed': {
      // What a misrouted proxy might return. Not HTML: the SDK's XML reader accepts an HTML page as an
      // empty result, which is a different (and quieter) failure than the one this fault stands for.
      const body = '{"message":"upstream returned something that is not STS"}\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    case 'truncated': {
      // The HTTP message is complete; its XML stops in the middle of the credentials.
      const full = placeholderBody();
      const body = full.slice(0, full.indexOf('<SecretAccessKey>') + '<SecretAccessKey>'.length + 8);
      res.writeHead(200, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
  }
}
