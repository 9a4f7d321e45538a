/**
 * An OAuth 2.0 token endpoint's success answer (RFC 6749 5.1) carrying a bearer access token, read
 * strictly: a proxy's page, a truncated body or a token that could not go into an Authorization header
 * must never become credentials, and an expiry claiming years would stop the refresher. What differs
 * between services (the longest lifetime believed, the token's shape, an older client's tolerance,
 * fields of their own) is the caller's `BearerAnswerRules`; every refusal is MalformedResponse naming
 * the service.
 */
import { malformed } from '../upstream/failures.js';
import { jsonObjectAnswer } from '../upstream/json-answer.js';

export interface BearerAnswerRules {
  /** Named in every refusal. */
  service: string;
  /** The longest expires_in believed, in seconds. */
  maxExpiresIn: number;
  /** What access_token must match: bounded, and one line of visible ASCII for an Authorization header. */
  tokenShape: RegExp;
  /** Also take expires_in as a string of up to 9 digits (MSAL does, for Entra). */
  expiresInAsDigits?: boolean;
  /** The service's own fields, checked after token_type: why the answer is refused, or undefined. */
  refuse?: (body: Readonly<Record<string, unknown>>) => string | undefined;
}

export interface BearerToken {
  /** A bearer credential: never logged. */
  accessToken: string;
  /** Our clock: expires_in counted from when the request left, so never later than the service meant. */
  expiration: Date;
}

function seconds(v: unknown, rules: BearerAnswerRules): number | undefined {
  const n = rules.expiresInAsDigits && typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= rules.maxExpiresIn ? n : undefined;
}

/** `sentAt`: our clock when the request left. */
export function parseBearerTokenAnswer(text: string, status: number, sentAt: number, rules: BearerAnswerRules): BearerToken {
  const b = jsonObjectAnswer(rules.service, text, status);
  if (typeof b.access_token !== 'string' || !rules.tokenShape.test(b.access_token))
    throw malformed(rules.service, 'no usable access_token', status);
  // RFC 6749 token types are case-insensitive.
  if (typeof b.token_type !== 'string' || b.token_type.toLowerCase() !== 'bearer')
    throw malformed(rules.service, 'token_type is not Bearer', status);
  const refused = rules.refuse?.(b);
  if (refused !== undefined) throw malformed(rules.service, refused, status);
  const e = seconds(b.expires_in, rules);
  if (e === undefined)
    throw malformed(rules.service, `expires_in is not a whole number of seconds from 1 to ${rules.maxExpiresIn}`, status);
  return { accessToken: b.access_token, expiration: new Date(sentAt + e * 1000) };
}
