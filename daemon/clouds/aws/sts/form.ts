/**
 * The body of an STS Query API request: Action, Version and the operation's parameters, form-encoded.
 * Encoded by SigV4's rules (RFC 3986 unreserved characters only), so the bytes signed are the bytes
 * sent and no `+`-for-space ambiguity reaches STS.
 */
import { uriEncode } from '../sigv4/encoding.js';

export const STS_API_VERSION = '2011-06-15';

export type StsAction = 'AssumeRoleWithWebIdentity' | 'AssumeRole';

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';

/** Parameters whose value is undefined are left out, as the SDK leaves out unset members. */
export function stsForm(action: StsAction, params: Record<string, string | number | undefined>): string {
  const pairs: string[] = [`Action=${action}`, `Version=${STS_API_VERSION}`];
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) pairs.push(`${uriEncode(name)}=${uriEncode(String(value))}`);
  }
  return pairs.join('&');
}
