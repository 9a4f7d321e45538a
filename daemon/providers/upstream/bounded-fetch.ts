/**
 * The one way a provider talks to its upstream: one overall deadline for the whole call (connect,
 * headers and every byte of the body), a cap on the body enforced while it streams, and the caller's
 * cancel signal. An upstream that stalls after its headers, drips a byte at a time or streams 400 MB
 * therefore costs at most `deadlineMs` and `maxBodyBytes`, whatever it does. Every provider, present
 * (STS through the SDK handler in sdk-handler.ts, Roles Anywhere directly) and future, goes through
 * boundedFetch (node:http, not fetch: fetch refuses some ports and decompresses on its own).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ProviderError } from '../types.js';
import { VERSION } from '../../version.js';
import { upstreamSlots } from './call-slots.js';

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
  headers: UpstreamHeaders;
  body: Buffer;
}

/**
 * The response's headers, read like fetch's Headers (names case-insensitive, repeats joined). Not the
 * global Headers itself: touching it loads node's whole fetch implementation, tens of milliseconds of a
 * daemon's start-up for a class whose two methods are these.
 */
export class UpstreamHeaders {
  readonly #map: ReadonlyMap<string, string>;
  constructor(raw: IncomingMessage['headers']) {
    const m = new Map<string, string>();
    for (const [k, v] of Object.entries(raw)) if (v !== undefined) m.set(k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v);
    this.#map = m;
  }
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }
  forEach(fn: (value: string, name: string) => void): void {
    for (const [k, v] of this.#map) fn(v, k);
  }
}

export interface BoundedFetchOptions {
  /** The upstream's name in messages ("STS", "Roles Anywhere"). */
  service: string;
  limits: UpstreamLimits;
  /** The caller's cancel (a refresher that stops). */
  signal?: AbortSignal;
}

/** Rejects as soon as `signal` fires, whatever the work under it is doing. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  // The work's own failure after the abort has nobody left to tell; it must not surface as unhandled.
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

function tooLarge(service: string, cap: number, status: number): ProviderError {
  return new ProviderError(
    'ResponseTooLarge',
    `${service} answered with more than ${cap} bytes; nothing past the limit was read`,
    true,
    status,
  );
}

/** The body, chunk by chunk, refused (and the connection closed) the moment it passes the cap. */
function readCapped(res: IncomingMessage, cap: number, service: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const status = res.statusCode ?? 0;
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > cap) {
      res.destroy();
      reject(tooLarge(service, cap, status));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > cap) {
        res.destroy();
        reject(tooLarge(service, cap, status));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('close', () => {
      if (!res.complete) reject(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' }));
    });
  });
}

/**
 * Names credport in the cloud's logs (CloudTrail's userAgent, Google's and Entra's sign-in logs), so an
 * operator can tell its calls from others. Left out of signatures: SigV4 signs only the headers it lists.
 */
const USER_AGENT = `credport/${VERSION} node/${process.versions.node}`;

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

function send(url: URL, request: UpstreamRequest, signal: AbortSignal, o: BoundedFetchOptions): Promise<UpstreamResponse> {
  const requestFn = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    // The signal destroys the socket too, so an abandoned call holds no connection.
    const headers = hasHeader(request.headers, 'user-agent') ? request.headers : { 'user-agent': USER_AGENT, ...request.headers };
    const req = requestFn(url, { method: request.method, headers, signal }, (res) => {
      readCapped(res, o.limits.maxBodyBytes, o.service).then(
        (body) => resolve({ status: res.statusCode ?? 0, headers: new UpstreamHeaders(res.headers), body }),
        reject,
      );
    });
    req.on('error', reject);
    req.end(request.body);
  });
}

/**
 * One upstream call under the limits. Throws ProviderError UpstreamTimeout (deadline passed),
 * ResponseTooLarge (cap passed) or Aborted (the caller's signal); transport errors (refused, reset,
 * DNS; the errno in `code`) are rethrown as they are, for the provider to name.
 */
export async function boundedFetch(url: string, request: UpstreamRequest, o: BoundedFetchOptions): Promise<UpstreamResponse> {
  let release: () => void;
  try {
    release = await upstreamSlots.acquire(o.signal);
  } catch {
    throw new ProviderError('Aborted', `the request to ${o.service} was cancelled`, true);
  }
  // The deadline counts from here: time spent waiting for a slot is not the upstream's.
  const deadline = AbortSignal.timeout(o.limits.deadlineMs);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  try {
    return await untilAborted(send(new URL(url), request, signal, o), signal);
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    if (o.signal?.aborted) throw new ProviderError('Aborted', `the request to ${o.service} was cancelled`, true);
    if (deadline.aborted)
      throw new ProviderError(
        'UpstreamTimeout',
        `${o.service} did not answer in time (deadline ${o.limits.deadlineMs} ms for the whole answer)`,
        true,
      );
    throw err;
  } finally {
    release();
  }
}
