/**
 * What is retried inside one STS call, and after how long: the AWS SDK's standard retry mode, which
 * the providers used before this client and whose behaviour they keep. Throttling (by code, or HTTP
 * 429), 500/502/503/504 and connection-level failures are retried, up to `maxAttempts` in all, after
 * a full-jitter exponential delay (base 100 ms, 500 ms when throttled, at most 20 s). Everything else
 * (STS's refusals, a passed deadline, an oversized or unreadable answer) goes to the refresher, whose
 * backoff handles what lasts longer.
 */
import type { ProviderError } from '../../../providers/types.js';
import { NETWORK_CODES } from '../../../providers/upstream/network-codes.js';

const THROTTLING_CODES = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
const TRANSIENT_CODES = new Set(['RequestTimeout', 'RequestTimeoutException']);
const TRANSIENT_STATUSES = new Set([500, 502, 503, 504]);

const BASE_DELAY_MS = 100;
const THROTTLED_BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 20_000;

export function isThrottling(err: ProviderError): boolean {
  return err.upstreamStatus === 429 || THROTTLING_CODES.has(err.code);
}

/** An STS answer worth another attempt in the same call. */
export function retriesAnswer(err: ProviderError): boolean {
  return isThrottling(err) || TRANSIENT_CODES.has(err.code) || TRANSIENT_STATUSES.has(err.upstreamStatus ?? 0);
}

/** A transport failure worth another attempt: the errno says the connection failed, not our limits. */
export function retriesTransport(errno: unknown): boolean {
  return typeof errno === 'string' && NETWORK_CODES.has(errno);
}

/** Delay before retry number `retry` (0 for the first), full jitter. */
export function retryDelayMs(retry: number, throttled: boolean, random: () => number): number {
  const base = throttled ? THROTTLED_BASE_DELAY_MS : BASE_DELAY_MS;
  return Math.floor(random() * Math.min(MAX_DELAY_MS, base * 2 ** retry));
}
