/**
 * IAM Service Account Credentials generateAccessToken: the federated token for a service account's
 * access token. expireTime is in Google's clock; it is shifted by the learnt skew and believed only up
 * to the lifetime asked for.
 */
import { malformed } from '../../../providers/upstream/failures.js';
import { jsonObjectAnswer } from '../../../providers/upstream/json-answer.js';
import { checkExpiration } from '../../../providers/upstream/plausibility.js';
import type { GoogleCallContext } from './google-call.js';
import { callIamCredentials, IAM_SERVICE } from './iam-credentials-call.js';
import { ACCESS_TOKEN_SHAPE } from './sts-exchange.js';

export { IAM_SERVICE } from './iam-credentials-call.js';

export interface ImpersonationRequest {
  /** Base URL, no trailing slash. */
  endpoint: string;
  serviceAccount: string;
  scopes: string[];
  lifetimeSeconds: number;
  /** The STS token: a bearer credential. */
  federatedToken: string;
}

export interface ServiceAccountToken {
  accessToken: string;
  /** Our clock. */
  expiration: Date;
}

/** RFC 3339 as Google writes it (UTC, up to nanoseconds); Date.parse alone accepts far too much. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

export function parseImpersonationAnswer(text: string, status: number): { accessToken: string; expireTime: Date } {
  const b = jsonObjectAnswer(IAM_SERVICE, text, status);
  if (typeof b.accessToken !== 'string' || !ACCESS_TOKEN_SHAPE.test(b.accessToken))
    throw malformed(IAM_SERVICE, 'no usable accessToken', status);
  if (typeof b.expireTime !== 'string' || !RFC3339.test(b.expireTime))
    throw malformed(IAM_SERVICE, 'expireTime is not an RFC 3339 time', status);
  // Nanoseconds are more than Date reads: cut to milliseconds first.
  const expireTime = new Date(b.expireTime.replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(expireTime.getTime())) throw malformed(IAM_SERVICE, 'expireTime is not a valid time', status);
  return { accessToken: b.accessToken, expireTime };
}

export async function generateAccessToken(req: ImpersonationRequest, ctx: GoogleCallContext): Promise<ServiceAccountToken> {
  const answer = await callIamCredentials(
    {
      endpoint: req.endpoint,
      serviceAccount: req.serviceAccount,
      method: 'generateAccessToken',
      payload: { scope: req.scopes, lifetime: `${req.lifetimeSeconds}s` },
      federatedToken: req.federatedToken,
    },
    ctx,
  );
  const parsed = parseImpersonationAnswer(answer.text, answer.status);
  const expiration = ctx.skew.toLocal(parsed.expireTime);
  checkExpiration(IAM_SERVICE, expiration, ctx.now(), req.lifetimeSeconds);
  return { accessToken: parsed.accessToken, expiration };
}
