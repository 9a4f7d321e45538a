/**
 * An AWS SDK request handler that sends through boundedFetch, for the admin commands' SDK clients (S3
 * and CloudFront in `credport oidc publish`; the daemon's own STS calls do not use the SDK, see
 * clouds/aws/sts/). It gives an SDK client the same overall
 * deadline and body cap as every other upstream call. The SDK's own NodeHttpHandler cannot give that:
 * its requestTimeout is a socket idle timer that stops mattering once headers arrive, so an upstream
 * that sends headers and then stalls (or drips a byte every few seconds) holds the call forever, and
 * its body is streamed to the deserializer uncapped. Here the whole body is read under the deadline
 * and the cap, and the SDK is handed bytes.
 */
// Type-only: this module loads no SDK; the admin module that uses it has loaded its client already.
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { boundedFetch, type UpstreamLimits } from './bounded-fetch.js';

type SdkHandler = Extract<NonNullable<S3ClientConfig['requestHandler']>, { handle: unknown }>;
type SdkRequest = Parameters<SdkHandler['handle']>[0];
type SdkOptions = NonNullable<Parameters<SdkHandler['handle']>[1]>;
type SdkResult = Awaited<ReturnType<SdkHandler['handle']>>;

/** Transport errors the SDK's retry strategy treats as transient when they carry these names/codes. */
const TIMEOUT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/** RFC 3986 encoding as the SDK signs it (encodeURIComponent leaves !'()* alone). */
const encode = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function urlOf(r: SdkRequest): string {
  const host = r.hostname.includes(':') && !r.hostname.startsWith('[') ? `[${r.hostname}]` : r.hostname;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(r.query ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (v === null || v === undefined) parts.push(encode(k));
    else for (const one of Array.isArray(v) ? v : [v]) parts.push(`${encode(k)}=${encode(one)}`);
  }
  return `${r.protocol}//${host}${r.port ? `:${r.port}` : ''}${r.path}${parts.length ? `?${parts.join('&')}` : ''}`;
}

function bodyOf(body: unknown): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  // The admin calls here send strings or bytes; a stream body would need a different handler.
  throw new Error('credport upstream handler: streaming request bodies are not supported');
}

/** Named as the SDK's own handler names them, so its retry strategy reads them alike. */
function transportError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) e.name = 'TimeoutError';
  return e;
}

export class BoundedSdkHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };

  constructor(
    private readonly service: string,
    private readonly limits: UpstreamLimits,
  ) {}

  async handle(request: SdkRequest, options?: SdkOptions): Promise<SdkResult> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) headers[k] = String(v);
    const abort = options?.abortSignal;
    const signal = abort instanceof AbortSignal ? abort : undefined;
    let res;
    try {
      res = await boundedFetch(
        urlOf(request),
        { method: request.method, headers, ...(bodyOf(request.body) !== undefined ? { body: bodyOf(request.body)! } : {}) },
        { service: this.service, limits: this.limits, ...(signal ? { signal } : {}) },
      );
    } catch (err) {
      throw err instanceof Error && err.name === 'ProviderError' ? err : transportError(err);
    }
    const out: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      out[k] = v;
    });
    return {
      response: { statusCode: res.status, headers: out, body: new Uint8Array(res.body.buffer, res.body.byteOffset, res.body.byteLength) },
    } as SdkResult;
  }

  updateHttpClientConfig(): void {
    // Nothing to configure: the limits are fixed per provider.
  }

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    // Connections belong to node's global agent, shared with every other upstream call.
  }
}
