// IAM Service Account Credentials, POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken: a
// federated token (from this emulator's STS) buys a service account's access token when its principal
// holds roles/iam.workloadIdentityUser on that account, directly or through the pool's principalSet.
// The order is Google's: authenticate the bearer token (401), read the request (400), authorize (403).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../read-body.js';
import type { GoogleContext } from './context.js';
import { MAX_BODY_BYTES, mediaType } from './http.js';
import { GoogleApiError, sendGoogleApiError, sendJson } from './errors.js';
import type { FederatedTokenRecord } from './token-store.js';

/** Default and (without an organisation policy, which the emulator does not model) maximum lifetime. */
const DEFAULT_LIFETIME_SECONDS = 3600;
const MAX_LIFETIME_SECONDS = 3600;
/** The caller's token must carry one of these to call IAM Credentials at all. */
const CALLER_SCOPES = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/iam'];
const DURATION = /^(\d{1,12})(?:\.\d{1,9})?s$/;
const PROJECT = /^(?:-|[a-z][a-z0-9-]{4,28}[a-z0-9])$/;

const invalidArgument = (message: string): GoogleApiError => new GoogleApiError(400, 'INVALID_ARGUMENT', message);
const unauthenticated = (message: string): GoogleApiError => new GoogleApiError(401, 'UNAUTHENTICATED', message);

/** The service account email of a generateAccessToken path (below the service prefix), or undefined. */
export function generateAccessTokenTarget(path: string): { email: string } | { invalid: string } | undefined {
  const match = /^\/v1\/projects\/([^/]+)\/serviceAccounts\/([^/]+):generateAccessToken$/.exec(path);
  if (match === null) return undefined;
  let project: string;
  let email: string;
  try {
    project = decodeURIComponent(match[1] ?? '');
    email = decodeURIComponent(match[2] ?? '');
  } catch {
    return { invalid: 'The resource name is not correctly percent-encoded' };
  }
  if (!PROJECT.test(project)) return { invalid: 'The project in the resource name must be - or a project ID' };
  if (!email.includes('@')) return { invalid: 'The service account in the resource name must be its email address' };
  return { email };
}

export function authenticate(req: IncomingMessage, ctx: GoogleContext): FederatedTokenRecord {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer +(\S+)$/i.exec(header) : null;
  if (match === null) throw unauthenticated('The request has no valid Bearer access token (Authorization: Bearer <token>)');
  const record = ctx.tokens.lookup(match[1] ?? '');
  if (record === undefined) throw unauthenticated('The access token is not one this service issued');
  if (record.expiresAt.getTime() <= ctx.now()) throw unauthenticated('The access token has expired');
  if (!record.scopes.some((s) => CALLER_SCOPES.includes(s))) {
    throw new GoogleApiError(
      403,
      'PERMISSION_DENIED',
      `The access token's scopes are insufficient; it needs ${CALLER_SCOPES.join(' or ')}`,
    );
  }
  if (record.kind !== 'federated') {
    // Chained impersonation (serviceAccountTokenCreator) is not modelled: only pool identities may call.
    throw new GoogleApiError(403, 'PERMISSION_DENIED', 'The emulator lets only federated identities impersonate service accounts');
  }
  return record;
}

interface TokenRequest {
  scopes: string[];
  lifetimeSeconds: number;
}

function parseRequest(text: string): TokenRequest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalidArgument('Invalid JSON payload: the body is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw invalidArgument('Invalid JSON payload: the body must be a JSON object');
  const body = doc as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (key !== 'scope' && key !== 'lifetime' && key !== 'delegates')
      throw invalidArgument(`Invalid JSON payload: unknown field "${key.slice(0, 64)}"`);
  }
  if (body.delegates !== undefined && !(Array.isArray(body.delegates) && body.delegates.length === 0)) {
    throw invalidArgument('Delegation chains (delegates) are not modelled by the emulator');
  }
  const scope = body.scope;
  if (
    !Array.isArray(scope) ||
    scope.length === 0 ||
    !scope.every((s): s is string => typeof s === 'string' && s.length > 0 && s.length <= 1024)
  ) {
    throw invalidArgument('scope must be a non-empty array of OAuth scope strings');
  }
  let lifetimeSeconds = DEFAULT_LIFETIME_SECONDS;
  if (body.lifetime !== undefined) {
    const text = typeof body.lifetime === 'string' ? body.lifetime : '';
    const match = DURATION.exec(text);
    if (match === null) throw invalidArgument('lifetime must be a duration in seconds such as "3600s"');
    // Fractions are accepted on the wire but tokens expire on whole seconds.
    lifetimeSeconds = Number(match[1]);
    if (lifetimeSeconds < 1) throw invalidArgument('lifetime must be at least 1s');
    if (Number(text.slice(0, -1)) > MAX_LIFETIME_SECONDS) {
      throw invalidArgument(`lifetime must be at most ${MAX_LIFETIME_SECONDS}s for this service account`);
    }
  }
  return { scopes: [...new Set(scope)], lifetimeSeconds };
}

/** Google writes expireTime in RFC 3339 UTC with whole seconds. */
function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Answers one generateAccessToken request for `email`; never throws. Resolves true on success. */
export async function handleGenerateAccessToken(
  req: IncomingMessage,
  res: ServerResponse,
  email: string,
  ctx: GoogleContext,
): Promise<boolean> {
  try {
    if (req.method !== 'POST') throw new GoogleApiError(404, 'NOT_FOUND', 'generateAccessToken is served on POST only');
    const caller = authenticate(req, ctx);
    const type = mediaType(req.headers['content-type']);
    if (type !== 'application/json') throw invalidArgument('The request body must be application/json');
    const raw = await readBody(
      req,
      MAX_BODY_BYTES,
      () => new GoogleApiError(413, 'INVALID_ARGUMENT', `The request body exceeds ${MAX_BODY_BYTES} bytes`),
    );
    const request = parseRequest(raw.toString('utf8'));
    // Unknown account and unbound account answer alike, so callers cannot probe which accounts exist.
    if (!ctx.registry.mayImpersonate(email, caller)) {
      throw new GoogleApiError(
        403,
        'PERMISSION_DENIED',
        `The caller lacks iam.serviceAccounts.getAccessToken on service account ${email.slice(0, 256)}, or the account does not exist`,
      );
    }
    const lifetime = ctx.tokenLifetimeSeconds() ?? request.lifetimeSeconds;
    const expiresSeconds = Math.floor(ctx.now() / 1000) + lifetime;
    const accessToken = ctx.tokens.issue({
      kind: 'service-account',
      email,
      impersonatedBy: caller.principal,
      scopes: Object.freeze(request.scopes),
      expiresAt: new Date(expiresSeconds * 1000),
    });
    sendJson(res, 200, { accessToken, expireTime: rfc3339(expiresSeconds) });
    return true;
  } catch (err) {
    if (err instanceof GoogleApiError) {
      if (err.code === 413) res.setHeader('connection', 'close');
      sendGoogleApiError(res, err);
    } else {
      sendGoogleApiError(res, new GoogleApiError(500, 'INTERNAL', 'The emulator failed to process the request'));
    }
    return false;
  }
}

/** Anything else under the IAM Credentials prefix. */
export function sendIamCredentialsNotFound(res: ServerResponse, message = 'The requested URL was not found on this server'): void {
  sendGoogleApiError(res, new GoogleApiError(404, 'NOT_FOUND', message));
}

export function sendIamCredentialsInvalid(res: ServerResponse, message: string): void {
  sendGoogleApiError(res, invalidArgument(message));
}
