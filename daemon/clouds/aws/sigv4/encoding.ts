/**
 * SigV4's encoding rules, shared by every signer here: SigV4-X509 (Roles Anywhere) and the HMAC signer
 * (STS AssumeRole, ACM Private CA). One implementation, so the two cannot drift apart.
 */
import { createHash } from 'node:crypto';

/** SigV4 date format: 20240102T030405Z. */
export function amzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/**
 * SigV4 URI encoding: every byte except A-Z a-z 0-9 - _ . ~ as %XX with upper-case hex; '/' kept only in
 * paths. encodeURIComponent leaves !'()* alone, so those are encoded here explicitly.
 */
export function uriEncode(value: string, keepSlash = false): string {
  const out = encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? out.replace(/%2F/g, '/') : out;
}

/** Header values are trimmed and runs of spaces folded to one, as SigV4 specifies. */
export function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/ {2,}/g, ' ');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
