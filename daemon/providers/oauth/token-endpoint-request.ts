/**
 * The POST an OAuth 2.0 token endpoint takes (RFC 6749 3.2): the parameters form-encoded, a JSON answer
 * asked for. The fields include secrets (assertions, subject tokens): the request is never logged.
 */
import type { UpstreamRequest } from '../upstream/bounded-fetch.js';

export function tokenEndpointRequest(fields: Readonly<Record<string, string>>): UpstreamRequest {
  const body = new URLSearchParams(fields).toString();
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
  };
}
