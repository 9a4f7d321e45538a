/**
 * Maps what CreateSession answers (a REST-JSON service) and what the transport throws onto ProviderError,
 * keeping the service's own code and message. The code comes from the x-amzn-ErrorType header when
 * present, else from the body's __type/code, else from the status, the order AWS's REST-JSON clients use.
 */
import { ProviderError } from '../../../providers/types.js';
import { NETWORK_CODES } from '../../../providers/upstream/network-codes.js';
import type { UpstreamHeaders } from '../../../providers/upstream/bounded-fetch.js';
import { SIGV4_TIME_CODES } from '../sigv4/time-refusal.js';

const RETRYABLE_CODES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'InternalServerException',
  'InternalFailure',
  'InternalError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'UpstreamUnreachable',
  'UpstreamTimeout',
  'MalformedResponse',
]);

const MAX_MESSAGE = 500;

/** "AccessDeniedException:http://internal.amazon.com/..." or "aws.protocol#AccessDeniedException" -> AccessDeniedException. */
export function sanitizeErrorCode(raw: string): string {
  let code = raw.trim();
  const colon = code.indexOf(':');
  if (colon >= 0) code = code.slice(0, colon);
  const hash = code.lastIndexOf('#');
  if (hash >= 0) code = code.slice(hash + 1);
  return code;
}

function defaultCode(status: number): string {
  if (status === 429) return 'ThrottlingException';
  if (status === 403) return 'AccessDeniedException';
  if (status === 404) return 'ResourceNotFoundException';
  if (status === 400) return 'ValidationException';
  if (status >= 500) return 'InternalServerException';
  return 'UnknownError';
}

function stringField(value: unknown, ...names: string[]): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  for (const name of names) {
    const v = (value as Record<string, unknown>)[name];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** An error answer (any status but 201) to a ProviderError. */
export function mapErrorResponse(status: number, headers: Pick<UpstreamHeaders, 'get'>, bodyText: string): ProviderError {
  let body: unknown;
  try {
    body = bodyText.trim() === '' ? undefined : JSON.parse(bodyText);
  } catch {
    body = undefined; // a proxy's HTML page, say; the status still tells what happened
  }
  const headerCode = headers.get('x-amzn-errortype');
  const bodyCode = stringField(body, '__type', 'code', 'Code');
  const code = sanitizeErrorCode(headerCode ?? bodyCode ?? '') || defaultCode(status);
  const message = (stringField(body, 'message', 'Message') ?? `Roles Anywhere answered HTTP ${status}`).slice(0, MAX_MESSAGE);
  const retryable = RETRYABLE_CODES.has(code) || status === 429 || status >= 500;
  return new ProviderError(code, message, retryable, status);
}

/**
 * Whether the service refused the request for its timestamp. Roles Anywhere reports that as an
 * AccessDeniedException whose message speaks of the signature's date, like SigV4 services do.
 */
export function isClockSkewError(err: ProviderError): boolean {
  if (SIGV4_TIME_CODES.has(err.code)) return true;
  return err.upstreamStatus === 403 && /signature (has )?expired|not yet (current|valid)|x-amz-date|request time|clock/i.test(err.message);
}

/** What fetch() throws to a ProviderError; `timedOut` and `aborted` say which of our signals fired. */
export function mapTransportError(err: unknown, state: { timedOut: boolean; aborted: boolean }): ProviderError {
  if (state.aborted) return new ProviderError('Aborted', 'the request to Roles Anywhere was cancelled', true);
  if (state.timedOut) return new ProviderError('UpstreamTimeout', 'Roles Anywhere did not answer in time', true);
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code =
    typeof cause?.code === 'string'
      ? cause.code
      : err instanceof Error && 'code' in err && typeof err.code === 'string'
        ? err.code
        : undefined;
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new ProviderError('UpstreamTimeout', `Roles Anywhere did not answer in time (${code})`, true);
  }
  const detail = code ?? (typeof cause?.message === 'string' ? cause.message : err instanceof Error ? err.message : String(err));
  const known = code !== undefined && (NETWORK_CODES.has(code) || code.startsWith('UND_ERR'));
  return new ProviderError('UpstreamUnreachable', `cannot reach Roles Anywhere (${known ? code : detail.slice(0, 200)})`, true);
}
