/**
 * Google STS token exchange (RFC 8693): the device JWT for a federated access token. The request is
 * unauthenticated (no Authorization header: the subject token is the credential). The answer is read
 * strictly: a proxy's page or a truncated body must never become a token.
 */
import { malformed, stsError } from '../errors.js';
import { callGoogle, type GoogleCallContext } from './google-call.js';

export const STS_SERVICE = 'Google STS';
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** Google's longest token lifetime; an expires_in beyond it is not believed. */
export const MAX_EXPIRES_IN = 43200;

export interface StsExchangeRequest {
  /** Base URL, no trailing slash. */
  endpoint: string;
  audience: string;
  scopes: string[];
  subjectToken: string;
}

export interface FederatedToken {
  /** A bearer credential: never logged. */
  accessToken: string;
  /** Our clock: expires_in counted from when the request left. */
  expiration: Date;
}

/** What an access token may be: it goes into an Authorization header, so one line of visible ASCII. */
export const ACCESS_TOKEN_SHAPE = /^[\x21-\x7e]{1,8192}$/;

export function parseStsAnswer(text: string, status: number, sentAt: number): FederatedToken {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw malformed(STS_SERVICE, text === '' ? 'empty body' : 'the body is not JSON (truncated?)', status);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw malformed(STS_SERVICE, 'the body is not a JSON object', status);
  const b = body as Record<string, unknown>;
  if (typeof b.access_token !== 'string' || !ACCESS_TOKEN_SHAPE.test(b.access_token))
    throw malformed(STS_SERVICE, 'no usable access_token', status);
  // RFC 6749 token types are case-insensitive; Google sends "Bearer".
  if (typeof b.token_type !== 'string' || b.token_type.toLowerCase() !== 'bearer')
    throw malformed(STS_SERVICE, 'token_type is not Bearer', status);
  if (b.issued_token_type !== undefined && b.issued_token_type !== ACCESS_TOKEN_TYPE)
    throw malformed(STS_SERVICE, 'issued_token_type is not an access token', status);
  const e = b.expires_in;
  if (typeof e !== 'number' || !Number.isInteger(e) || e <= 0 || e > MAX_EXPIRES_IN) {
    throw malformed(STS_SERVICE, `expires_in is not a whole number of seconds from 1 to ${MAX_EXPIRES_IN}`, status);
  }
  return { accessToken: b.access_token, expiration: new Date(sentAt + e * 1000) };
}

export async function exchangeToken(req: StsExchangeRequest, ctx: GoogleCallContext): Promise<FederatedToken> {
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    audience: req.audience,
    scope: req.scopes.join(' '),
    requested_token_type: ACCESS_TOKEN_TYPE,
    subject_token: req.subjectToken,
    subject_token_type: JWT_TOKEN_TYPE,
  }).toString();
  const answer = await callGoogle(
    STS_SERVICE,
    `${req.endpoint}/v1/token`,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'content-length': String(Buffer.byteLength(form)),
      },
      body: form,
    },
    ctx,
  );
  if (answer.status !== 200) throw stsError(answer.status, answer.text);
  return parseStsAnswer(answer.text, answer.status, answer.sentAt);
}
