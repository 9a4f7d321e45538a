/**
 * Google's error answers as ProviderError, keeping Google's own words: STS speaks OAuth
 * (`{error, error_description}`), IAM Credentials speaks google.rpc (`{error: {code, message, status}}`).
 * ProviderError sanitizes both, so an echoed token never leaves. An answer that cannot be read and a
 * transport failure are the same for every cloud (providers/upstream/failures.ts).
 */
import { ProviderError } from '../../providers/types.js';
import { retryableStatus } from '../../providers/upstream/failures.js';
import { jsonObjectOf } from '../../providers/upstream/json-answer.js';

/** google.rpc.Code names by HTTP status, for answers without a readable body (a proxy's page). */
function canonicalCode(status: number): string {
  switch (status) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'NOT_FOUND';
    case 409:
      return 'ABORTED';
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 501:
      return 'UNIMPLEMENTED';
    case 503:
      return 'UNAVAILABLE';
    case 504:
      return 'DEADLINE_EXCEEDED';
    default:
      return status >= 500 ? 'INTERNAL' : 'UNKNOWN';
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** An STS answer other than 200: `error` becomes the code (invalid_grant...), `error_description` the message. */
export function stsError(status: number, text: string): ProviderError {
  const body = jsonObjectOf(text);
  const code = str(body?.error) ?? canonicalCode(status);
  const message = str(body?.error_description) ?? `Google STS answered HTTP ${status}`;
  return new ProviderError(code, message, retryableStatus(status), status);
}

/** An IAM Credentials answer other than 200: `error.status` becomes the code (PERMISSION_DENIED...). */
export function iamCredentialsError(status: number, text: string): ProviderError {
  const inner = jsonObjectOf(text)?.error;
  const e = typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : undefined;
  const code = str(e?.status) ?? canonicalCode(status);
  const message = str(e?.message) ?? `IAM Credentials answered HTTP ${status}`;
  return new ProviderError(code, message, retryableStatus(status), status);
}

export function configError(message: string): ProviderError {
  return new ProviderError('InvalidConfiguration', message, false);
}
