/**
 * Which endpoint URLs a profile may name. Both calls carry bearer material (the subject token, the
 * federated token), so plain http is allowed only to this machine (an emulator, a test).
 */
import { configError } from '../errors.js';

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** The base URL without a trailing slash; throws ProviderError InvalidConfiguration. */
export function endpointBase(raw: string, field: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw configError(`${field} ${raw} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw configError(`${field} ${raw} must be an https URL`);
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname))
    throw configError(`${field} ${raw} must be https (plain http only to a loopback host)`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')
    throw configError(`${field} ${raw} must not have a query, fragment or credentials`);
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}
