/**
 * Entra ID's error answers as ProviderError, keeping Entra's words: its error JSON is OAuth's
 * `{error, error_description}` plus `error_codes` (AADSTS numbers), which become the code so that
 * /health says AADSTS700213 rather than invalid_client. ProviderError sanitizes both. An answer that
 * cannot be read and a transport failure are the same for every cloud (providers/upstream/failures.ts).
 */
import { ProviderError } from '../../../providers/types.js';
import { retryableStatus } from '../../../providers/upstream/failures.js';
import { jsonObjectOf } from '../../../providers/upstream/json-answer.js';

export const ENTRA_SERVICE = 'Entra ID';

/** An answer other than 200: AADSTS code when given, else the OAuth error, else the status. */
export function entraError(status: number, text: string): ProviderError {
  const body = jsonObjectOf(text);
  const codes = Array.isArray(body?.error_codes) ? body.error_codes.filter((c): c is number => Number.isInteger(c)) : [];
  const oauth = typeof body?.error === 'string' && body.error !== '' ? body.error : undefined;
  const code = codes[0] !== undefined ? `AADSTS${codes[0]}` : (oauth ?? `HTTP${status}`);
  const described = typeof body?.error_description === 'string' && body.error_description !== '' ? body.error_description : undefined;
  // Entra's description starts with the code and ends with trace and correlation ids: the first line says it.
  const message = described?.split(/\r?\n/)[0] ?? `${ENTRA_SERVICE} answered HTTP ${status}`;
  // A refused assertion will be refused again; throttling and server trouble pass.
  return new ProviderError(code, message, retryableStatus(status), status);
}

export function configError(message: string): ProviderError {
  return new ProviderError('InvalidConfiguration', message, false);
}
