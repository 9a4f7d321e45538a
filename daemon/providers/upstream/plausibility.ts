/**
 * What an upstream's answer may claim about time. An Expiration is believed only up to the duration we
 * asked for plus a margin (services round, clocks differ by seconds): 9999-12-31 would otherwise be
 * served and the next refresh scheduled millennia away.
 */
import { ProviderError } from '../types.js';

/** Slack beyond the requested duration: clock differences and rounding, never hours. */
export const EXPIRATION_SLACK_MS = 5 * 60_000;

/** Throws ProviderError ImplausibleExpiration when `expiration` (our clock) is beyond what was asked. */
export function checkExpiration(service: string, expiration: Date, nowMs: number, durationSeconds: number): void {
  const latest = nowMs + durationSeconds * 1000 + EXPIRATION_SLACK_MS;
  if (expiration.getTime() > latest) {
    throw new ProviderError(
      'ImplausibleExpiration',
      `${service} answered with credentials expiring at ${expiration.toISOString()}, beyond the ${durationSeconds} s asked for; the answer is not believed`,
      true,
    );
  }
}
