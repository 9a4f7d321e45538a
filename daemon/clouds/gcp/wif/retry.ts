/**
 * Short retries inside one fetch, per upstream call: throttling, 5xx, network and deadline failures
 * pass in seconds; anything longer is the refresher's backoff. A call that succeeded is not repeated
 * because the next one failed (an STS token stays good while impersonation is retried).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError } from '../../../providers/types.js';

export interface RetryPolicy {
  /** Attempts per call, at least 1. */
  maxAttempts: number;
  /** First pause in ms; doubles, with equal jitter, up to MAX_RETRY_DELAY_MS. */
  baseMs: number;
  random: () => number;
  signal?: AbortSignal;
}

export const MAX_RETRY_DELAY_MS = 5_000;

/**
 * Retryable by the refresher, pointless to repeat at once: a cancel, an answer too large (it will be
 * again), a clock or an expiry not believed (the same upstream will say the same).
 */
const NOT_NOW = new Set(['Aborted', 'ResponseTooLarge', 'ImplausibleClockSkew', 'ImplausibleExpiration']);

export function retryDelay(attempt: number, p: RetryPolicy): number {
  const step = Math.min(MAX_RETRY_DELAY_MS, p.baseMs * 2 ** (attempt - 1));
  // Equal jitter: a fleet spreads out without any retry collapsing to 0.
  return step / 2 + p.random() * (step / 2);
}

export async function withRetries<T>(service: string, call: () => Promise<T>, p: RetryPolicy): Promise<T> {
  const attempts = Math.max(1, p.maxAttempts);
  for (let attempt = 1; ; attempt++) {
    if (p.signal?.aborted) throw new ProviderError('Aborted', `the request to ${service} was cancelled`, true);
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ProviderError) || !err.retryable || NOT_NOW.has(err.code) || attempt >= attempts) throw err;
    }
    try {
      await sleep(retryDelay(attempt, p), undefined, p.signal ? { signal: p.signal } : {});
    } catch {
      throw new ProviderError('Aborted', `the request to ${service} was cancelled`, true);
    }
  }
}
