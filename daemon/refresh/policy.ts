/** The arithmetic of refreshing: when to refresh, when to retry, what is too old to serve. */
import type { RefreshConfig } from '../config/schema.js';

export interface RefreshPolicy {
  fraction: number;
  jitter: number;
  minRemainingMs: number;
  expiryMarginMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export function policyFromConfig(c: RefreshConfig): RefreshPolicy {
  return {
    fraction: c.fraction,
    jitter: c.jitter,
    minRemainingMs: c.min_remaining_seconds * 1000,
    expiryMarginMs: c.expiry_margin_seconds * 1000,
    retryBaseMs: c.retry_base_seconds * 1000,
    retryMaxMs: c.retry_max_seconds * 1000,
  };
}

/**
 * Next scheduled refresh after a fetch at `fetchedAt` of credentials expiring at
 * `expiresAt`: at fraction-minus-jitter of the lifetime, so that a one-hour
 * credential is replaced with 30-36 minutes left, long before any SDK's own
 * refresh window (5 to 15 minutes).
 */
export function scheduledRefreshAt(p: RefreshPolicy, fetchedAt: number, expiresAt: number, random: () => number): number {
  const lifetime = expiresAt - fetchedAt;
  const f = Math.max(0.05, p.fraction - p.jitter * random());
  const at = fetchedAt + lifetime * f;
  // Never later than the point where the credentials stop being served.
  return Math.min(at, expiresAt - p.expiryMarginMs);
}

/** Exponential backoff with "equal jitter": never zero (no hot loop), never in step across a fleet. */
export function retryDelayMs(p: RefreshPolicy, failures: number, random: () => number): number {
  const exp = Math.min(p.retryMaxMs, p.retryBaseMs * 2 ** Math.max(0, failures - 1));
  return exp / 2 + (exp / 2) * random();
}

/**
 * Below this much time left, a request waits for a refresh rather than taking
 * the cached credentials. Capped at half the lifetime, so credentials the
 * upstream only grants for a short time do not trigger a refresh per request.
 */
export function demandThresholdMs(p: RefreshPolicy, fetchedAt: number, expiresAt: number): number {
  return Math.min(p.minRemainingMs, (expiresAt - fetchedAt) / 2);
}
