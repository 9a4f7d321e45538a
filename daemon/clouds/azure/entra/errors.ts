/**
 * Entra ID's answers and the transport's failures as ProviderError, keeping Entra's words: its error
 * JSON is OAuth's `{error, error_description}` plus `error_codes` (AADSTS numbers), which become the
 * code so that /health says AADSTS700213 rather than invalid_client. ProviderError sanitizes both.
 */
import { ProviderError } from '../../../providers/types.js';

export const ENTRA_SERVICE = 'Entra ID';

function jsonOf(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Throttling and server trouble pass; a refused assertion will be refused again. */
const retryableStatus = (status: number): boolean => status === 429 || status >= 500;

/** An answer other than 200: AADSTS code when given, else the OAuth error, else the status. */
export function entraError(status: number, text: string): ProviderError {
  const body = jsonOf(text);
  const codes = Array.isArray(body?.error_codes) ? body.error_codes.filter((c): c is number => Number.isInteger(c)) : [];
  const oauth = typeof body?.error === 'string' && body.error !== '' ? body.error : undefined;
  const code = codes[0] !== undefined ? `AADSTS${codes[0]}` : (oauth ?? `HTTP${status}`);
  const described = typeof body?.error_description === 'string' && body.error_description !== '' ? body.error_description : undefined;
  // Entra's description starts with the code and ends with trace and correlation ids: the first line says it.
  const message = described?.split(/\r?\n/)[0] ?? `${ENTRA_SERVICE} answered HTTP ${status}`;
  return new ProviderError(code, message, retryableStatus(status), status);
}

export function malformed(service: string, why: string, status: number): ProviderError {
  return new ProviderError('MalformedResponse', `${service} answered with a response that could not be read: ${why}`, true, status);
}

export function transportError(service: string, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  const detail = code ?? (err instanceof Error ? err.message : String(err)).slice(0, 200);
  return new ProviderError('UpstreamUnreachable', `cannot reach ${service} (${detail})`, true);
}

export function configError(message: string): ProviderError {
  return new ProviderError('InvalidConfiguration', message, false);
}
