/**
 * Read, change, write-if-unchanged, and start again when someone else wrote in between: the way
 * many devices edit one JWKS in S3 without a lock server. The write carries the version read
 * (If-Match: ETag) or says the object must not exist yet (If-None-Match: *); S3 answers 412 (or
 * 409 for two writes in flight at once) to the loser, who re-reads and merges again, so every
 * device's change lands on top of every other's.
 */

export interface Versioned<T> {
  value: T | undefined;
  /** The version the write must match; undefined when the object does not exist. */
  etag: string | undefined;
}

export interface ConditionalTarget<T> {
  read(): Promise<Versioned<T>>;
  /** Writes `value` only if the object is still at `etag` (absent when undefined); false when it is not. */
  write(value: T, etag: string | undefined): Promise<boolean>;
}

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  // Twenty devices at once settle in a handful of rounds; this bound is far above that.
  attempts: 20,
  baseMs: 50,
  maxMs: 2000,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  random: Math.random,
};

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

export interface UpdateOutcome<T> {
  value: T;
  changed: boolean;
  attempts: number;
}

/**
 * `change` gets the current value and returns the new one, or the same one (by `same`) for no
 * write at all; it may throw to refuse (a full set, a malformed document), and nothing is written.
 */
export async function updateConditionally<T>(
  target: ConditionalTarget<T>,
  change: (current: T | undefined) => T,
  same: (a: T | undefined, b: T) => boolean,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<UpdateOutcome<T>> {
  let ceiling = policy.baseMs;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    const current = await target.read();
    const next = change(current.value);
    if (same(current.value, next)) return { value: next, changed: false, attempts: attempt };
    if (await target.write(next, current.etag)) return { value: next, changed: true, attempts: attempt };
    // Full jitter: the losers of one round spread out instead of colliding again in step.
    await policy.sleep(policy.random() * ceiling);
    ceiling = Math.min(ceiling * 2, policy.maxMs);
  }
  throw new ConflictError(
    `gave up after ${policy.attempts} attempts: other writers changed the document every time; nothing of this change was written, run it again`,
  );
}
