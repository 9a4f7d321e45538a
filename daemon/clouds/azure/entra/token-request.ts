/**
 * One client_credentials request with a client assertion at Entra's v2.0 token endpoint, under the
 * upstream limits (one deadline, a body cap). Entra's `expires_in` is believed up to a day: its
 * tokens live 60-90 minutes, and an answer claiming years would stop the refresher.
 */
import { type BearerAnswerRules, type BearerToken, parseBearerTokenAnswer } from '../../../providers/oauth/bearer-token-answer.js';
import { tokenEndpointRequest } from '../../../providers/oauth/token-endpoint-request.js';
import { boundedFetch, type UpstreamLimits } from '../../../providers/upstream/bounded-fetch.js';
import { transportError } from '../../../providers/upstream/failures.js';
import { ENTRA_SERVICE, entraError } from './errors.js';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const ENTRA_ANSWER: BearerAnswerRules = {
  service: ENTRA_SERVICE,
  maxExpiresIn: 86_400,
  /** It goes into an Authorization header: one line of visible ASCII, bounded. */
  tokenShape: /^[\x21-\x7e]{1,16384}$/,
  // expires_in is a number in Entra's answers; a digit string is accepted as MSAL does.
  expiresInAsDigits: true,
};

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

export function parseTokenAnswer(text: string, status: number, sentAt: number): BearerToken {
  return parseBearerTokenAnswer(text, status, sentAt, ENTRA_ANSWER);
}

export async function requestToken(req: EntraTokenRequest, ctx: EntraCallContext): Promise<BearerToken> {
  const request = tokenEndpointRequest({
    grant_type: 'client_credentials',
    client_id: req.clientId,
    scope: req.scope,
    client_assertion_type: JWT_BEARER_ASSERTION,
    client_assertion: req.assertion,
  });
  const sentAt = ctx.now();
  let res;
  try {
    res = await boundedFetch(req.tokenUrl, request, {
      service: ENTRA_SERVICE,
      limits: ctx.limits,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  } catch (err) {
    throw transportError(ENTRA_SERVICE, err);
  }
  const text = res.body.toString('utf8');
  if (res.status !== 200) throw entraError(res.status, text);
  return parseTokenAnswer(text, res.status, sentAt);
}
