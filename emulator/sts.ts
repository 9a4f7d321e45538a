// The STS Query API, as far as credport uses it: POST / with a form-encoded AssumeRoleWithWebIdentity
// (unsigned; the web identity token is the proof) or AssumeRole (SigV4-signed with credentials this
// emulator issued earlier: role chaining). Parameters are checked the way STS checks them (and reported
// in its "N validation errors detected" style), the token is verified by oidc-verify, a SigV4 signature
// by sigv4-verify against the secret of the credentials it names, the role's trust policy by iam, and
// only then are credentials minted. Injected faults are rendered here too, since they are about the wire.

import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IamRegistry, Role } from './iam.js';
import { randomBase32 } from './iam.js';
import { verifyWebIdentityToken } from './oidc-verify.js';
import { arrivedRequest, headerOf, parseAmzDate, parseAuthorization, verifySessionSignature } from './sigv4-verify.js';
import type { ArrivedRequest } from './sigv4-verify.js';
import { readBody } from './read-body.js';
import { sessionTagsOf } from './session-tags.js';
import { StsError, assumeRoleBody, errorBody, successBody } from './xml.js';
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
  /** OIDC: the token's sub. Roles Anywhere: the certificate subject. AssumeRole: the caller's session ARN. */
  subject: string;
  /** OIDC: the audience that matched. Roles Anywhere: the trust anchor ARN. AssumeRole: the caller's access key ID. */
  audience: string;
  sessionName: string;
  /** The call that minted them. */
  via: 'AssumeRoleWithWebIdentity' | 'CreateSession' | 'AssumeRole';
  /** Roles Anywhere: the certificate's serial number, decimal. */
  certificateSerial?: string;
}

export interface StsContext {
  iam: IamRegistry;
  now(): number;
  clockSkewSeconds: number;
  /** The region this STS endpoint is: a signed request must be scoped to it, as at a regional endpoint. */
  region: string;
  /** Test override of the credential lifetime in seconds; null means "as requested". */
  credentialLifetimeSeconds(): number | null;
  record(credentials: IssuedCredentials): void;
  /** Credentials this emulator issued, by access key ID: what a SigV4 signature is checked against. */
  lookup(accessKeyId: string): IssuedCredentials | undefined;
}

export const STS_VERSION = '2011-06-15';
/** Real STS bodies are a few KiB at most (the token is capped at 20000 characters). */
export const MAX_BODY_BYTES = 64 * 1024;

const DEFAULT_DURATION_SECONDS = 3600;
const MIN_DURATION_SECONDS = 900;
const MAX_DURATION_SECONDS = 43200;
const SESSION_NAME_PATTERN = /^[\w+=,.@-]*$/;
const EXTERNAL_ID_PATTERN = /^[\w+=,.@:/-]*$/;
const ACCESS_DENIED = 'Not authorized to perform sts:AssumeRoleWithWebIdentity';
/** STS accepts a signed request up to 15 minutes either side of its own clock. */
const SIGV4_WINDOW_MS = 15 * 60_000;
/** A role session assuming another role (role chaining) gets at most one hour. */
const ROLE_CHAINING_MAX_SECONDS = 3600;

export interface StsOutcome {
  ok: boolean;
}

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

function isFormEncoded(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  return typeof type === 'string' && type.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

interface AssumeRequest {
  roleArn: string;
  sessionName: string;
  token: string;
  durationSeconds: number;
  externalId: string | undefined;
}

/**
 * STS's own constraint checks, collected so one response names every problem, as STS does. `action`
 * decides whether a web identity token (AssumeRoleWithWebIdentity) or an optional ExternalId
 * (AssumeRole) belongs to the request.
 */
function validateParameters(params: URLSearchParams, action: 'AssumeRoleWithWebIdentity' | 'AssumeRole'): AssumeRequest {
  const problems: string[] = [];
  const nullValue = (field: string): void => {
    problems.push(`Value null at '${field}' failed to satisfy constraint: Member must not be null`);
  };
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
  const token = action === 'AssumeRoleWithWebIdentity' ? params.get('WebIdentityToken') : '';
  if (token === null) nullValue('webIdentityToken');
  else if (action === 'AssumeRoleWithWebIdentity') lengthBetween('webIdentityToken', token, 4, 20000, false);

  const externalId = action === 'AssumeRole' ? params.get('ExternalId') : null;
  if (externalId !== null) {
    lengthBetween('externalId', externalId, 2, 1224, true);
    if (!EXTERNAL_ID_PATTERN.test(externalId))
      bad('externalId', externalId, 'Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*');
  }

  const rawDuration = params.get('DurationSeconds');
  let durationSeconds = DEFAULT_DURATION_SECONDS;
  if (rawDuration !== null) {
    durationSeconds = /^\d{1,9}$/.test(rawDuration) ? Number(rawDuration) : Number.NaN;
    if (Number.isNaN(durationSeconds)) bad('durationSeconds', rawDuration, 'Member must be an integer');
    else if (durationSeconds < MIN_DURATION_SECONDS)
      bad('durationSeconds', rawDuration, `Member must have value greater than or equal to ${MIN_DURATION_SECONDS}`);
    else if (durationSeconds > MAX_DURATION_SECONDS)
      bad('durationSeconds', rawDuration, `Member must have value less than or equal to ${MAX_DURATION_SECONDS}`);
  }

  if (problems.length > 0) {
    const count = problems.length === 1 ? '1 validation error' : `${problems.length} validation errors`;
    throw new StsError(400, 'ValidationError', `${count} detected: ${problems.join('; ')}`);
  }
  if (roleArn === null || sessionName === null || token === null) throw new Error('unreachable: validated above');
  if (!/^arn:[\w-]+:iam::\d{12}:role\/\S+$/.test(roleArn)) {
    throw new StsError(400, 'ValidationError', 'Request ARN is invalid');
  }
  return { roleArn, sessionName, token, durationSeconds, externalId: externalId ?? undefined };
}

export interface MintInput {
  roleArn: string;
  durationSeconds: number;
  subject: string;
  audience: string;
  sessionName: string;
  via: IssuedCredentials['via'];
  certificateSerial?: string;
}

/** New session credentials; the emulator-wide lifetime override wins over the requested duration. */
export function mintCredentials(input: MintInput, ctx: { now(): number; credentialLifetimeSeconds(): number | null }): IssuedCredentials {
  const lifetime = ctx.credentialLifetimeSeconds() ?? input.durationSeconds;
  // Whole seconds, so the Date recorded here equals what the body (and so the client) says.
  const expiresMs = Math.floor(ctx.now() / 1000) * 1000 + lifetime * 1000;
  return {
    accessKeyId: `ASIA${randomBase32(16)}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: randomBytes(384).toString('base64'),
    expiration: new Date(expiresMs),
    roleArn: input.roleArn,
    subject: input.subject,
    audience: input.audience,
    sessionName: input.sessionName,
    via: input.via,
    ...(input.certificateSerial !== undefined ? { certificateSerial: input.certificateSerial } : {}),
  };
}

/** arn:aws:sts::<account>:assumed-role/<role name>/<session>: the path is not part of it. */
export function assumedRoleArn(role: Role, sessionName: string): string {
  return `arn:${role.partition}:sts::${role.accountId}:assumed-role/${role.name}/${sessionName}`;
}

async function assumeRoleWithWebIdentity(params: URLSearchParams, ctx: StsContext, requestId: string): Promise<string> {
  const request = validateParameters(params, 'AssumeRoleWithWebIdentity');
  const identity = await verifyWebIdentityToken(request.token, {
    findProvider: (issuer) => ctx.iam.findProvider(issuer),
    now: ctx.now,
    clockSkewSeconds: ctx.clockSkewSeconds,
  });
  // Unknown role and untrusted role answer alike, so callers cannot probe which roles exist.
  const role = ctx.iam.getRole(request.roleArn);
  const sessionTags = sessionTagsOf(identity.claims);
  if (role === undefined || !ctx.iam.trusts(role, { ...identity, sessionTags })) throw new StsError(403, 'AccessDenied', ACCESS_DENIED);
  if (request.durationSeconds > role.maxSessionDurationSeconds) {
    throw new StsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  }
  const credentials = mintCredentials(
    {
      roleArn: role.arn,
      durationSeconds: request.durationSeconds,
      subject: identity.subject,
      audience: identity.audience,
      sessionName: request.sessionName,
      via: 'AssumeRoleWithWebIdentity',
    },
    ctx,
  );
  ctx.record(credentials);
  return successBody(
    {
      subject: identity.subject,
      audience: identity.audience,
      assumedRoleArn: assumedRoleArn(role, request.sessionName),
      assumedRoleId: `${role.roleId}:${request.sessionName}`,
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
      expiration: credentials.expiration,
      provider: identity.provider.hostPath,
    },
    requestId,
  );
}

/**
 * SigV4 (AWS4-HMAC-SHA256) verification against the credentials the emulator issued. The refusals and
 * their codes follow STS: no signature, a malformed one, an unknown key or token, an expired token, a
 * timestamp outside the window, a signature that does not match.
 */
function authenticate(req: ArrivedRequest, ctx: StsContext): IssuedCredentials {
  const authorization = headerOf(req, 'authorization');
  if (authorization === undefined) throw new StsError(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
  const auth = parseAuthorization(authorization);
  if (auth === undefined || auth.algorithm !== 'AWS4-HMAC-SHA256') {
    throw new StsError(400, 'IncompleteSignature', 'The Authorization header is not a well-formed AWS4-HMAC-SHA256 signature');
  }
  if (auth.scope.service !== 'sts' || auth.scope.terminator !== 'aws4_request') {
    throw new StsError(403, 'SignatureDoesNotMatch', `Credential should be scoped to the service sts, not ${auth.scope.service}`);
  }
  if (auth.scope.region !== ctx.region) {
    throw new StsError(403, 'SignatureDoesNotMatch', `Credential should be scoped to a valid region, not '${auth.scope.region}'`);
  }
  if (!auth.signedHeaders.includes('host')) throw new StsError(403, 'SignatureDoesNotMatch', 'The host header must be signed');
  const dateText = headerOf(req, 'x-amz-date');
  const dateMs = parseAmzDate(dateText);
  if (dateText === undefined || dateMs === undefined || !auth.signedHeaders.includes('x-amz-date')) {
    throw new StsError(400, 'IncompleteSignature', 'A signed X-Amz-Date header (YYYYMMDDTHHMMSSZ) is required');
  }
  if (auth.scope.date !== dateText.slice(0, 8)) {
    throw new StsError(
      403,
      'SignatureDoesNotMatch',
      `Credential should be scoped to a valid date: ${dateText.slice(0, 8)}, not ${auth.scope.date}`,
    );
  }
  return verifySessionSignature(
    req,
    auth,
    { text: dateText, ms: dateMs },
    {
      lookup: (id) => ctx.lookup(id),
      now: () => ctx.now(),
      windowMs: SIGV4_WINDOW_MS,
      refuse: (kind, detail) => {
        if (kind === 'unknown-token') return new StsError(403, 'InvalidClientTokenId', detail);
        if (kind === 'expired') return new StsError(400, 'ExpiredToken', detail);
        if (kind === 'mismatch')
          return new StsError(
            403,
            'SignatureDoesNotMatch',
            'The request signature does not match the one computed from the request and the secret access key',
          );
        return new StsError(403, 'SignatureDoesNotMatch', detail);
      },
    },
  );
}

/** sts:AssumeRole by a role session: role chaining, capped at one hour whatever the role allows. */
function assumeRole(params: URLSearchParams, req: ArrivedRequest, ctx: StsContext, requestId: string): string {
  const caller = authenticate(req, ctx);
  const request = validateParameters(params, 'AssumeRole');
  const callerRole = ctx.iam.getRole(caller.roleArn);
  const callerArn = callerRole === undefined ? caller.roleArn : assumedRoleArn(callerRole, caller.sessionName);
  const callerAccount = caller.roleArn.split(':')[4] ?? '';
  const role = ctx.iam.getRole(request.roleArn);
  if (
    role === undefined ||
    !ctx.iam.trustsAssumeRole(role, { sourceRoleArn: caller.roleArn, sourceAccountId: callerAccount, externalId: request.externalId })
  ) {
    throw new StsError(
      403,
      'AccessDenied',
      `User: ${callerArn} is not authorized to perform: sts:AssumeRole on resource: ${request.roleArn}`,
    );
  }
  if (params.get('DurationSeconds') !== null && request.durationSeconds > ROLE_CHAINING_MAX_SECONDS) {
    throw new StsError(
      400,
      'ValidationError',
      'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
    );
  }
  if (request.durationSeconds > role.maxSessionDurationSeconds) {
    throw new StsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  }
  const credentials = mintCredentials(
    {
      roleArn: role.arn,
      durationSeconds: Math.min(request.durationSeconds, ROLE_CHAINING_MAX_SECONDS),
      subject: callerArn,
      audience: caller.accessKeyId,
      sessionName: request.sessionName,
      via: 'AssumeRole',
    },
    ctx,
  );
  ctx.record(credentials);
  return assumeRoleBody(
    {
      assumedRoleArn: assumedRoleArn(role, request.sessionName),
      assumedRoleId: `${role.roleId}:${request.sessionName}`,
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
      expiration: credentials.expiration,
    },
    requestId,
  );
}

async function dispatch(params: URLSearchParams, req: ArrivedRequest, ctx: StsContext, requestId: string): Promise<string> {
  const action = params.get('Action');
  if (action === null || action === '') throw new StsError(400, 'MissingAction', 'Missing Action');
  const version = params.get('Version');
  if (version === null || version === '') throw new StsError(400, 'MissingParameter', 'The request must contain the parameter Version');
  if (version === STS_VERSION && action === 'AssumeRoleWithWebIdentity') return assumeRoleWithWebIdentity(params, ctx, requestId);
  if (version === STS_VERSION && action === 'AssumeRole') return assumeRole(params, req, ctx, requestId);
  throw new StsError(400, 'InvalidAction', `Could not find operation ${action} for version ${version}`);
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
    const raw = await readBody(
      req,
      MAX_BODY_BYTES,
      () => new StsError(413, 'RequestEntityTooLarge', `Request body exceeds ${MAX_BODY_BYTES} bytes`),
    );
    const params = new URLSearchParams(raw.toString('utf8'));
    const body = await dispatch(params, arrivedRequest(req, raw), ctx, requestId);
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
  return successBody(
    {
      subject: 'placeholder',
      audience: 'placeholder',
      assumedRoleArn: 'arn:aws:sts::000000000000:assumed-role/placeholder/placeholder',
      assumedRoleId: 'AROAPLACEHOLDER:placeholder',
      accessKeyId: `ASIA${randomBase32(16)}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(384).toString('base64'),
      expiration: new Date(0),
      provider: 'placeholder',
    },
    randomUUID(),
  );
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
