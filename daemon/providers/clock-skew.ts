/**
 * How far the service's clock is from ours, learned from the Date header of
 * its answers. Expirations are in the service's clock: shifted by this offset,
 * they are compared with our clock correctly, so credentials the service
 * already considers expired are never served.
 */
import type { STSClient } from '@aws-sdk/client-sts';

/** Date has one-second resolution and requests take time: smaller offsets are noise. */
export const SKEW_THRESHOLD_MS = 30_000;

export class ClockSkew {
  #ms = 0;

  /** Service time minus local time, in ms (0 below the threshold). */
  get ms(): number {
    return this.#ms;
  }

  observe(dateHeader: string | null | undefined, sentAt: number, receivedAt: number): void {
    if (!dateHeader) return;
    const server = Date.parse(dateHeader);
    if (Number.isNaN(server)) return;
    // The server stamped Date between our send and receive; the midpoint is the best guess, +500 ms
    // centres its whole-second resolution.
    const offset = server + 500 - (sentAt + receivedAt) / 2;
    this.#ms = Math.abs(offset) >= SKEW_THRESHOLD_MS ? Math.round(offset) : 0;
  }

  /** An expiration stated by the service, as a local time. */
  toLocal(expiration: Date): Date {
    return this.#ms === 0 ? expiration : new Date(expiration.getTime() - this.#ms);
  }

  /** Watches every STS response's Date header (deserialize step, so the raw response is at hand). */
  watch(client: STSClient, now: () => number): void {
    client.middlewareStack.add(
      (next) => async (args) => {
        const sentAt = now();
        const result = await next(args);
        const headers = (result.response as { headers?: Record<string, string> } | undefined)?.headers;
        this.observe(headers?.date ?? headers?.Date, sentAt, now());
        return result;
      },
      { step: 'deserialize', name: 'credportClockSkew', override: true },
    );
  }
}
