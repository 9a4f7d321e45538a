/**
 * When a certificate is renewed, and how long to wait after a failed attempt: pure arithmetic on the
 * certificate's dates, so that the schedule is tested without a clock.
 */

export const DEFAULT_RENEWAL_AT = 2 / 3;
/** First pause after a failure; doubles each time. */
export const RETRY_BASE_MS = 30_000;
/** The longest pause after a failure, however long the certificate still has. */
export const RETRY_MAX_MS = 60 * 60_000;
/** The shortest pause: a CA that fails at once must not be hammered. */
export const RETRY_MIN_MS = 5_000;

/** The moment renewal starts: `at` of the way from notBefore to notAfter. */
export function renewalDueAt(notBefore: Date, notAfter: Date, at: number = DEFAULT_RENEWAL_AT): number {
  const start = notBefore.getTime();
  return start + Math.max(0, notAfter.getTime() - start) * at;
}

/**
 * The pause before attempt `failures + 1`: exponential from RETRY_BASE_MS, capped at RETRY_MAX_MS and at
 * a sixth of the time the current certificate has left, so that a certificate living minutes gets
 * several more tries before it expires. Jitter (equal, from `random`) spreads a fleet behind one CA.
 */
export function retryDelayMs(failures: number, msLeft: number, random: () => number = Math.random): number {
  const exp = RETRY_BASE_MS * 2 ** Math.min(Math.max(0, failures - 1), 16);
  const cap = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, msLeft / 6));
  const step = Math.min(exp, cap);
  return Math.max(RETRY_MIN_MS, Math.round(step / 2 + random() * (step / 2)));
}

/** "30d", "12h", "90m" to milliseconds; undefined for anything else. */
export function parseValidity(text: string): number | undefined {
  const m = /^([1-9]\d{0,5})([mhd])$/.exec(text);
  if (m === null) return undefined;
  const unit = m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3_600_000 : 86_400_000;
  return Number(m[1]) * unit;
}
