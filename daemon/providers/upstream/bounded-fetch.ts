/**
 * The one way a provider talks to its upstream: one overall deadline for the whole call (connect,
 * headers and every byte of the body), a cap on the body enforced while it streams, and the caller's
 * cancel signal. An upstream that stalls after its headers, drips a byte at a time or streams 400 MB
 * therefore costs at most `deadlineMs` and `maxBodyBytes`, whatever it does. Every provider, present
 * (STS through the SDK handler in sdk-handler.ts, Roles Anywhere directly) and future, goes through
 * boundedFetch.
 */
import { ProviderError } from '../types.js';

export interface UpstreamLimits {
  /** One deadline for the whole call: connect, headers and the last byte of the body. */
  deadlineMs: number;
  /** A body longer than this is refused as soon as the cap is passed; nothing more is read. */
  maxBodyBytes: number;
}

/** The Roles Anywhere cap (an answer is a few KiB) and a deadline well past any healthy answer. */
export const DEFAULT_UPSTREAM_LIMITS: UpstreamLimits = { deadlineMs: 10_000, maxBodyBytes: 256 * 1024 };

export interface UpstreamRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

export interface BoundedFetchOptions {
  /** The upstream's name in messages ("STS", "Roles Anywhere"). */
  service: string;
  limits: UpstreamLimits;
  /** The caller's cancel (a refresher that stops). */
  signal?: AbortSignal;
  /** Injected transport (tests); default the global fetch. */
  fetch?: typeof fetch;
}

/** Rejects as soon as `signal` fires, even if the transport under it ignores the signal. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

function tooLarge(service: string, cap: number, status: number): ProviderError {
  return new ProviderError('ResponseTooLarge', `${service} answered with more than ${cap} bytes; nothing past the limit was read`, true, status);
}

async function readCapped(response: Response, cap: number, signal: AbortSignal, service: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > cap) {
    void response.body?.cancel().catch(() => undefined);
    throw tooLarge(service, cap, response.status);
  }
  if (response.body === null) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await untilAborted(reader.read(), signal);
      if (done) break;
      size += value.byteLength;
      if (size > cap) throw tooLarge(service, cap, response.status);
      chunks.push(value);
    }
  } catch (err) {
    // Stop the transfer itself: the connection is closed, the upstream sends nothing more.
    void reader.cancel().catch(() => undefined);
    throw err;
  }
  return Buffer.concat(chunks);
}

/**
 * One upstream call under the limits. Throws ProviderError UpstreamTimeout (deadline passed),
 * ResponseTooLarge (cap passed) or Aborted (the caller's signal); transport errors (refused, reset,
 * DNS) are rethrown as they are, for the provider to name.
 */
export async function boundedFetch(url: string, request: UpstreamRequest, o: BoundedFetchOptions): Promise<UpstreamResponse> {
  const deadline = AbortSignal.timeout(o.limits.deadlineMs);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  const fetchImpl = o.fetch ?? fetch;
  try {
    const response = await untilAborted(
      fetchImpl(url, { method: request.method, headers: request.headers, ...(request.body !== undefined ? { body: request.body } : {}), signal, redirect: 'manual' }),
      signal,
    );
    const body = await readCapped(response, o.limits.maxBodyBytes, signal, o.service);
    return { status: response.status, headers: response.headers, body };
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    if (o.signal?.aborted) throw new ProviderError('Aborted', `the request to ${o.service} was cancelled`, true);
    if (deadline.aborted) throw new ProviderError('UpstreamTimeout', `${o.service} did not answer in time (deadline ${o.limits.deadlineMs} ms for the whole answer)`, true);
    throw err;
  }
}
