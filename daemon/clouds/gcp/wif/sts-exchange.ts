/**
 * Google STS token exchange (RFC 8693): the device JWT for a federated access token. The request is
 * unauthenticated (no Authorization header: the subject token is the credential). The answer is read
 * strictly (providers/oauth/bearer-token-answer.ts): a proxy's page or a truncated body must never
 * become a token.
 */
import { type BearerAnswerRules, type BearerToken, parseBearerTokenAnswer } from '../../../providers/oauth/bearer-token-answer.js';
import { tokenEndpointRequest } from '../../../providers/oauth/token-endpoint-request.js';
import { stsError } from '../errors.js';
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

export type FederatedToken = BearerToken;

/** What an access token may be: it goes into an Authorization header, so one line of visible ASCII. */
export const ACCESS_TOKEN_SHAPE = /^[\x21-\x7e]{1,8192}$/;

const STS_ANSWER: BearerAnswerRules = {
  service: STS_SERVICE,
  maxExpiresIn: MAX_EXPIRES_IN,
  tokenShape: ACCESS_TOKEN_SHAPE,
  refuse: (b) =>
    b.issued_token_type !== undefined && b.issued_token_type !== ACCESS_TOKEN_TYPE ? 'issued_token_type is not an access token' : undefined,
};

export function parseStsAnswer(text: string, status: number, sentAt: number): FederatedToken {
  return parseBearerTokenAnswer(text, status, sentAt, STS_ANSWER);
}

export async function exchangeToken(req: StsExchangeRequest, ctx: GoogleCallContext): Promise<FederatedToken> {
  const request = tokenEndpointRequest({
    grant_type: TOKEN_EXCHANGE_GRANT,
    audience: req.audience,
    scope: req.scopes.join(' '),
    requested_token_type: ACCESS_TOKEN_TYPE,
    subject_token: req.subjectToken,
    subject_token_type: JWT_TOKEN_TYPE,
  });
  const answer = await callGoogle(STS_SERVICE, `${req.endpoint}/v1/token`, request, ctx);
  if (answer.status !== 200) throw stsError(answer.status, answer.text);
  return parseStsAnswer(answer.text, answer.status, answer.sentAt);
}
