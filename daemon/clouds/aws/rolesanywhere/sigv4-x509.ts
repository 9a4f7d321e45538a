/**
 * SigV4-X509, the request signing IAM Roles Anywhere uses: SigV4's canonical request and string to sign,
 * with the certificate in headers instead of an access key, the certificate's serial number as the
 * credential, and an asymmetric signature over the string to sign instead of an HMAC chain.
 *
 * Everything here except signCreateSessionRequest() is a pure function of its inputs, so the golden
 * vectors in test/fixtures/rolesanywhere/ pin the exact bytes.
 */
import { canonicalHeaderValue, sha256Hex, uriEncode } from '../sigv4/encoding.js';
import type { X509SigningAlgorithm, X509SigningKey } from '../../../x509/signing-key.js';

// Re-exported: the golden vectors and their generator know them by this module.
export { amzDate, canonicalHeaderValue, sha256Hex, uriEncode } from '../sigv4/encoding.js';

export const SERVICE = 'rolesanywhere';

export interface SigV4X509Input {
  method: string;
  /** The Host header value: host, plus :port when it is not the scheme's default. */
  host: string;
  /** The absolute path as sent, e.g. /sessions. */
  path: string;
  /** Query parameters, unencoded; they are encoded here by SigV4's rules. */
  query: Record<string, string>;
  /** Further headers to send and sign (content-type); names in any case. */
  headers: Record<string, string>;
  body: string | Uint8Array;
  /** YYYYMMDDTHHMMSSZ */
  amzDate: string;
  region: string;
  algorithm: X509SigningAlgorithm;
  /** DER of the end-entity certificate (X-Amz-X509). */
  certificate: Uint8Array;
  /** DER of the intermediates, leaf excluded, in order from the one that issued the leaf. */
  chain: readonly Uint8Array[];
  /** The certificate's serial number as an unsigned decimal string. */
  serial: string;
}

export interface SignedRequest {
  /** Every header to send, lower-case names, including authorization and host. */
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
  /** Lower-case hex. */
  signature: string;
  /** The query string to put in the URL: already in canonical (encoded, sorted) form. */
  queryString: string;
}

/** Parameters encoded by SigV4's rules and sorted by encoded name, then value. */
export function canonicalQueryString(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export function credentialScope(date: string, region: string): string {
  return `${date.slice(0, 8)}/${region}/${SERVICE}/aws4_request`;
}

/** The headers SigV4-X509 sets before signing, with their values; lower-case names. */
export function signingHeaders(input: SigV4X509Input): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers)) headers[name.toLowerCase()] = value;
  headers.host = input.host;
  headers['x-amz-date'] = input.amzDate;
  headers['x-amz-x509'] = Buffer.from(input.certificate).toString('base64');
  // Only when there are intermediates: an empty header would be signed as an empty value.
  if (input.chain.length > 0) headers['x-amz-x509-chain'] = input.chain.map((c) => Buffer.from(c).toString('base64')).join(',');
  return headers;
}

export function canonicalRequest(input: SigV4X509Input): { canonicalRequest: string; signedHeaders: string } {
  const headers = signingHeaders(input);
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${canonicalHeaderValue(headers[n] ?? '')}\n`).join('');
  const signedHeaders = names.join(';');
  const path = input.path
    .split('/')
    .map((segment) => uriEncode(segment))
    .join('/');
  return {
    canonicalRequest: [
      input.method.toUpperCase(),
      path === '' ? '/' : path,
      canonicalQueryString(input.query),
      canonicalHeaders,
      signedHeaders,
      sha256Hex(input.body),
    ].join('\n'),
    signedHeaders,
  };
}

export function stringToSign(algorithm: X509SigningAlgorithm, date: string, scope: string, canonical: string): string {
  return `${algorithm}\n${date}\n${scope}\n${sha256Hex(canonical)}`;
}

export function authorizationHeader(
  algorithm: X509SigningAlgorithm,
  serial: string,
  scope: string,
  signedHeaders: string,
  signatureHex: string,
): string {
  return `${algorithm} Credential=${serial}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signatureHex}`;
}

/** Signs one request: canonical request, string to sign, the key's signature, the Authorization header. */
export async function signRequest(input: SigV4X509Input, key: X509SigningKey): Promise<SignedRequest> {
  if (key.algorithm !== input.algorithm) throw new Error(`the key signs ${key.algorithm}, not ${input.algorithm}`);
  const { canonicalRequest: canonical, signedHeaders } = canonicalRequest(input);
  const scope = credentialScope(input.amzDate, input.region);
  const toSign = stringToSign(input.algorithm, input.amzDate, scope, canonical);
  const signature = Buffer.from(await key.sign(Buffer.from(toSign, 'utf8'))).toString('hex');
  return {
    headers: {
      ...signingHeaders(input),
      authorization: authorizationHeader(input.algorithm, input.serial, scope, signedHeaders, signature),
    },
    canonicalRequest: canonical,
    stringToSign: toSign,
    signature,
    queryString: canonicalQueryString(input.query),
  };
}
