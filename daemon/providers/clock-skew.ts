/**
 * How far the service's clock is from ours, learned from the Date header of
 * its answers. Expirations are in the service's clock: shifted by this offset,
 * they are compared with our clock correctly, so credentials the service
 * already considers expired are never served.
 */
import { ProviderError } from './types.js';

/** Date has one-second resolution and requests take time: smaller offsets are noise. */
export const SKEW_THRESHOLD_MS = 30_000;
/**
 * Beyond this the Date header is not believed: a device clock a day off cannot have signed anything a
 * service accepted, and a lying Date (1970, 2200) would otherwise move a one-hour credential decades.
 */
export const MAX_SKEW_MS = 24 * 60 * 60_000;

export class ClockSkew {
  #ms = 0;

  /** Service time minus local time, in ms (0 below the threshold). */
  get ms(): number {
    return this.#ms;
  }

  /**
   * Learns the offset from one answer's Date header. Throws ProviderError ImplausibleClockSkew (and
   * keeps the offset it had) when the header is more than MAX_SKEW_MS from our clock.
   */
  observe(dateHeader: string | null | undefined, sentAt: number, receivedAt: number, service = 'the upstream'): void {
    if (!dateHeader) return;
    const server = Date.parse(dateHeader);
    if (Number.isNaN(server)) return;
    // The server stamped Date between our send and receive; the midpoint is the best guess, +500 ms
    // centres its whole-second resolution.
    const offset = server + 500 - (sentAt + receivedAt) / 2;
    if (Math.abs(offset) > MAX_SKEW_MS) {
      throw new ProviderError(
        'ImplausibleClockSkew',
        `${service} answered with a Date header ${Math.round(offset / 3_600_000)} h from this machine's clock (more than ${MAX_SKEW_MS / 3_600_000} h); the answer is not believed`,
        true,
      );
    }
    this.#ms = Math.abs(offset) >= SKEW_THRESHOLD_MS ? Math.round(offset) : 0;
  }

  /** An expiration stated by the service, as a local time. */
  toLocal(expiration: Date): Date {
    return this.#ms === 0 ? expiration : new Date(expiration.getTime() - this.#ms);
  }
}
