/**
 * Time as the refresh code sees it. Injected so tests drive time instead of
 * sleeping; the real clock's timers are unref'd so that a pending refresh
 * never keeps a finished process alive.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock milliseconds: credential expirations are wall-clock times. */
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** setTimeout overflows above 2^31-1 ms (about 24.8 days) and fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
