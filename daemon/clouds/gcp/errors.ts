/**
 * Google's answers and the transport's failures as ProviderError, keeping Google's own words: STS
 * speaks OAuth (`{error, error_description}`), IAM Credentials speaks google.rpc
 * (`{error: {code, message, status}}`). ProviderError sanitizes both, so an echoed token never leaves.
 */
import { ProviderError } from '../../providers/types.js';

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

/** Throttling and server trouble pass; everything else is an answer about us and stays the same. */
const retryableStatus = (status: number): boolean => status === 429 || status >= 500;

function jsonOf(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** An STS answer other than 200: `error` becomes the code (invalid_grant...), `error_description` the message. */
export function stsError(status: number, text: string): ProviderError {
  const body = jsonOf(text);
  const code = str(body?.error) ?? canonicalCode(status);
  const message = str(body?.error_description) ?? `Google STS answered HTTP ${status}`;
  return new ProviderError(code, message, retryableStatus(status), status);
}

/** An IAM Credentials answer other than 200: `error.status` becomes the code (PERMISSION_DENIED...). */
export function iamCredentialsError(status: number, text: string): ProviderError {
  const inner = jsonOf(text)?.error;
  const e = typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : undefined;
  const code = str(e?.status) ?? canonicalCode(status);
  const message = str(e?.message) ?? `IAM Credentials answered HTTP ${status}`;
  return new ProviderError(code, message, retryableStatus(status), status);
}

export function malformed(service: string, why: string, status: number): ProviderError {
  return new ProviderError('MalformedResponse', `${service} answered with a response that could not be read: ${why}`, true, status);
}

/** What boundedFetch rethrows as it is (refused, reset, DNS): the errno is named, never the raw text alone. */
export function transportError(service: string, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  const detail = code ?? (err instanceof Error ? err.message : String(err)).slice(0, 200);
  return new ProviderError('UpstreamUnreachable', `cannot reach ${service} (${detail})`, true);
}

export function configError(message: string): ProviderError {
  return new ProviderError('InvalidConfiguration', message, false);
}
