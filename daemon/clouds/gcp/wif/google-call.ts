/**
 * One call to a Google endpoint under the upstream limits (boundedFetch: one deadline, a body cap, the
 * caller's cancel, a call slot), learning the clock skew from every answer's Date header, refusals
 * included: a refusal for a future `iat` is exactly the answer that teaches us Google's time.
 */
import type { ClockSkew } from '../../../providers/clock-skew.js';
import { boundedFetch, type UpstreamLimits, type UpstreamRequest } from '../../../providers/upstream/bounded-fetch.js';
import { transportError } from '../../../providers/upstream/failures.js';

export interface GoogleCallContext {
  limits: UpstreamLimits;
  skew: ClockSkew;
  now: () => number;
  signal?: AbortSignal;
}

export interface GoogleAnswer {
  status: number;
  text: string;
  /** Our clock when the request left: a relative lifetime (expires_in) counts from no earlier than this. */
  sentAt: number;
}

export async function callGoogle(service: string, url: string, request: UpstreamRequest, ctx: GoogleCallContext): Promise<GoogleAnswer> {
  const sentAt = ctx.now();
  let res;
  try {
    res = await boundedFetch(url, request, { service, limits: ctx.limits, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  } catch (err) {
    throw transportError(service, err);
  }
  ctx.skew.observe(res.headers.get('date'), sentAt, ctx.now(), service);
  return { status: res.status, text: res.body.toString('utf8'), sentAt };
}
