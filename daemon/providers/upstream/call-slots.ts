/**
 * How many upstream calls run at once in one daemon. A daemon with many profiles starts (or wakes from
 * sleep) with every profile due at the same moment; without a bound, all their calls would race each
 * other to the deadline and time out together, then retry together. Calls wait for a slot in order,
 * and each call's deadline starts only when it has one: waiting is not the upstream's slowness.
 */
export const MAX_CONCURRENT_UPSTREAM_CALLS = 32;

export class CallSlots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size = MAX_CONCURRENT_UPSTREAM_CALLS) {
    this.#free = size;
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` fires first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const release = once(() => {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    });
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const granted = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(granted);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal?.reason as Error);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(granted);
    });
  }

  get waiting(): number {
    return this.#waiting.length;
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}

/** The daemon's slots: one process, one bound, across every provider. */
export const upstreamSlots = new CallSlots();
