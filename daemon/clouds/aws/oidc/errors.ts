/** Maps what @aws-sdk/client-sts throws onto ProviderError, keeping STS's own code and message. */
import { ProviderError } from '../../../providers/types.js';
import { NETWORK_CODES } from '../../../providers/upstream/network-codes.js';

/** SDK exception names -> the STS wire codes people search for. */
const STS_CODES: Record<string, string> = {
  InvalidIdentityTokenException: 'InvalidIdentityToken',
  IDPCommunicationErrorException: 'IDPCommunicationError',
  IDPRejectedClaimException: 'IDPRejectedClaim',
  ExpiredTokenException: 'ExpiredTokenException',
  MalformedPolicyDocumentException: 'MalformedPolicyDocument',
  PackedPolicyTooLargeException: 'PackedPolicyTooLarge',
  RegionDisabledException: 'RegionDisabledException',
};

const RETRYABLE_CODES = new Set([
  'IDPCommunicationError',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'InternalFailure',
  'InternalError',
  'ServiceUnavailable',
  'UpstreamUnreachable',
  'UpstreamTimeout',
  'MalformedResponse',
]);

interface SdkLikeError {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: unknown;
}

function isMalformed(e: SdkLikeError, status: number | undefined, message: string): boolean {
  // STS answered 2xx, or with no usable status, and the SDK could not read the body.
  const known = e.Code !== undefined || STS_CODES[e.name ?? ''] !== undefined;
  return (
    !known &&
    (status === undefined || status < 300) &&
    (e.name === 'SyntaxError' || /deserializ|parse|unexpected end|xml|char/i.test(message))
  );
}

export function mapStsError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkLikeError;
  const status = e.$metadata?.httpStatusCode;
  const message = (e.message ?? String(err)).slice(0, 500);
  if (e.name === 'AbortError') return new ProviderError('Aborted', 'the request to STS was cancelled', true);
  // A reset connection also surfaces as a TimeoutError; the errno tells them apart.
  if (e.code && e.code !== 'ETIMEDOUT' && NETWORK_CODES.has(e.code)) {
    return new ProviderError('UpstreamUnreachable', `cannot reach STS (${e.code}): ${message}`, true);
  }
  if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT' || e.name === 'RequestTimeout') {
    return new ProviderError('UpstreamTimeout', `STS did not answer in time: ${message}`, true);
  }
  if (isMalformed(e, status, message)) {
    return new ProviderError('MalformedResponse', `STS answered with a response that could not be read: ${message}`, true, status);
  }
  const code = e.Code ?? STS_CODES[e.name ?? ''] ?? (e.name && e.name !== 'Error' ? e.name : undefined) ?? 'UnknownError';
  const retryable = RETRYABLE_CODES.has(code) || (status !== undefined && status >= 500) || status === 429;
  return new ProviderError(code, message, retryable, status);
}
