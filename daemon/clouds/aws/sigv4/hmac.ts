/**
 * Plain SigV4 (AWS4-HMAC-SHA256) with session credentials: STS AssumeRole (signed with the source
 * profile's session) and the two ACM Private CA calls certificate renewal makes. The encoding rules are
 * SigV4-X509's (sigv4/encoding.ts); only the key derivation and the Authorization header differ.
 */
import { createHmac } from 'node:crypto';
import { canonicalHeaderValue, sha256Hex, uriEncode } from './encoding.js';

export interface HmacCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface HmacSigningInput {
  method: string;
  host: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  amzDate: string;
  region: string;
  service: string;
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Every header to send (lower-case names), authorization included. */
export function signHmac(input: HmacSigningInput, creds: HmacCredentials): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  headers.host = input.host;
  headers['x-amz-date'] = input.amzDate;
  if (creds.sessionToken !== undefined) headers['x-amz-security-token'] = creds.sessionToken;
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const path = input.path
    .split('/')
    .map((s) => uriEncode(s))
    .join('/');
  const canonical = [
    input.method,
    path === '' ? '/' : path,
    '',
    names.map((n) => `${n}:${canonicalHeaderValue(headers[n] ?? '')}\n`).join(''),
    signedHeaders,
    sha256Hex(input.body),
  ].join('\n');
  const date = input.amzDate.slice(0, 8);
  const scope = `${date}/${input.region}/${input.service}/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${input.amzDate}\n${scope}\n${sha256Hex(canonical)}`;
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), input.region), input.service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(toSign, 'utf8').digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
