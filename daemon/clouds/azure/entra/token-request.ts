/**
 * One client_credentials request with a client assertion at Entra's v2.0 token endpoint, under the
 * upstream limits (one deadline, a body cap). Entra's `expires_in` is believed up to a day: its
 * tokens live 60-90 minutes, and an answer claiming years would stop the refresher.
 */
import { boundedFetch, type UpstreamLimits } from '../../../providers/upstream/bounded-fetch.js';
import { ENTRA_SERVICE, entraError, malformed, transportError } from './errors.js';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_EXPIRES_IN = 86_400;
/** It goes into an Authorization header: one line of visible ASCII, bounded. */
const ACCESS_TOKEN_SHAPE = /^[\x21-\x7e]{1,16384}$/;

export interface EntraTokenRequest {
  /** AUTHORITY/TENANT/oauth2/v2.0/token. */
  tokenUrl: string;
  clientId: string;
  scope: string;
  assertion: string;
}

export interface EntraCallContext {
  limits: UpstreamLimits;
  now: () => number;
  signal?: AbortSignal;
}

export function tokenUrl(authority: string, tenant: string): string {
  return `${authority.replace(/\/+$/, '')}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`;
}

/** expires_in is a number in Entra's answers; a digit string is accepted as MSAL does. */
function seconds(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= MAX_EXPIRES_IN ? n : undefined;
}

export function parseTokenAnswer(text: string, status: number, sentAt: number): { accessToken: string; expiration: Date } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw malformed(ENTRA_SERVICE, text === '' ? 'empty body' : 'the body is not JSON (truncated?)', status);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw malformed(ENTRA_SERVICE, 'the body is not a JSON object', status);
  const b = body as Record<string, unknown>;
  if (typeof b.access_token !== 'string' || !ACCESS_TOKEN_SHAPE.test(b.access_token))
    throw malformed(ENTRA_SERVICE, 'no usable access_token', status);
  if (typeof b.token_type !== 'string' || b.token_type.toLowerCase() !== 'bearer')
    throw malformed(ENTRA_SERVICE, 'token_type is not Bearer', status);
  const e = seconds(b.expires_in);
  if (e === undefined) throw malformed(ENTRA_SERVICE, `expires_in is not a whole number of seconds from 1 to ${MAX_EXPIRES_IN}`, status);
  // Counted from when the request left: never later than Entra meant.
  return { accessToken: b.access_token, expiration: new Date(sentAt + e * 1000) };
}

export async function requestToken(req: EntraTokenRequest, ctx: EntraCallContext): Promise<{ accessToken: string; expiration: Date }> {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: req.clientId,
    scope: req.scope,
    client_assertion_type: JWT_BEARER_ASSERTION,
    client_assertion: req.assertion,
  }).toString();
  const sentAt = ctx.now();
  let res;
  try {
    res = await boundedFetch(
      req.tokenUrl,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'content-length': String(Buffer.byteLength(form)),
        },
        body: form,
      },
      { service: ENTRA_SERVICE, limits: ctx.limits, ...(ctx.signal ? { signal: ctx.signal } : {}) },
    );
  } catch (err) {
    throw transportError(ENTRA_SERVICE, err);
  }
  const text = res.body.toString('utf8');
  if (res.status !== 200) throw entraError(res.status, text);
  return parseTokenAnswer(text, res.status, sentAt);
}
