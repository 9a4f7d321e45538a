/**
 * STS failures as ProviderError: an error answer keeps STS's own <Code> and <Message> (the codes
 * people search for: InvalidIdentityToken, AccessDenied, ExpiredTokenException...), an answer that
 * cannot be read is MalformedResponse, a transport failure UpstreamUnreachable or UpstreamTimeout.
 * `retryable` is for the refresher's backoff; retry.ts decides what is retried inside one call.
 * Every code and message is sanitized by ProviderError itself.
 */
import { ProviderError } from '../../../providers/types.js';
import { UNREADABLE_CODE } from '../../../providers/upstream/error-text.js';
import { malformed, retryableStatus } from '../../../providers/upstream/failures.js';
import { NETWORK_CODES } from '../../../providers/upstream/network-codes.js';
import { SIGV4_TIME_CODES } from '../sigv4/time-refusal.js';
import { readError, readStsDocument } from './response.js';

const SERVICE = 'STS';
const MAX_MESSAGE = 500;

const RETRYABLE_CODES = new Set([
  'IDPCommunicationError',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'InternalFailure',
  'InternalError',
  'ServiceUnavailable',
]);

/** A 2xx answer that is not the expected document, or no document at all. */
export function malformedAnswer(status: number, reason: string): ProviderError {
  return malformed(SERVICE, reason, status);
}

/** A non-2xx answer. Without a readable ErrorResponse only the status is known. */
export function errorAnswer(status: number, body: string): ProviderError {
  const doc = readStsDocument(body);
  const fields = 'root' in doc ? readError(doc.root) : undefined;
  let code: string;
  let message: string;
  if (fields?.code !== undefined) {
    code = fields.code;
    message = fields.message ?? `${SERVICE} answered HTTP ${status} with ${code}`;
  } else {
    // The SDK names a bodiless 404 from a query service NotFound. Otherwise no code could be read: the
    // same code as one that could be read but was not a plain identifier.
    code = status === 404 ? 'NotFound' : UNREADABLE_CODE;
    message = `${SERVICE} answered HTTP ${status} without an STS error document (${'unreadable' in doc ? doc.unreadable : `root element ${doc.root.name}`})`;
  }
  const retryable = RETRYABLE_CODES.has(code) || retryableStatus(status);
  return new ProviderError(code, message.slice(0, MAX_MESSAGE), retryable, status);
}

/** What boundedFetch rethrows (refused, reset, DNS: the errno in `code`) as a ProviderError. */
export function transportError(err: unknown): ProviderError {
  const errno = (err as { code?: unknown } | null)?.code;
  const message = (err instanceof Error ? err.message : String(err)).slice(0, MAX_MESSAGE);
  if (errno === 'ETIMEDOUT') return new ProviderError('UpstreamTimeout', `${SERVICE} did not answer in time: ${message}`, true);
  if (typeof errno === 'string' && NETWORK_CODES.has(errno)) {
    return new ProviderError('UpstreamUnreachable', `cannot reach ${SERVICE} (${errno}): ${message}`, true);
  }
  return new ProviderError('UpstreamUnreachable', `cannot reach ${SERVICE}: ${message}`, true);
}

/**
 * STS refused a signed request for its timestamp: SignatureDoesNotMatch "Signature expired" / "not yet
 * current", or one of the codes other SigV4 services use for it.
 */
export function isClockSkewError(err: ProviderError): boolean {
  if (SIGV4_TIME_CODES.has(err.code)) return true;
  return (
    (err.code === 'SignatureDoesNotMatch' || err.code === 'InvalidSignatureException') &&
    /signature expired|signature not yet current/i.test(err.message)
  );
}
