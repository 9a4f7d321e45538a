/**
 * The failures every cloud's JSON upstream shares, as ProviderError with the same codes whichever cloud
 * called: an answer that cannot be read is MalformedResponse, a connection that could not be made
 * UpstreamUnreachable. Each cloud keeps its own error answers (their codes are the cloud's words).
 */
import { ProviderError } from '../types.js';

/** Throttling and server trouble pass; anything else is an answer about us and stays the same. */
export const retryableStatus = (status: number): boolean => status === 429 || status >= 500;

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
