// Server-side SigV4: rebuilds the canonical request from what actually arrived (method, raw path and
// query, the values of the headers the client says it signed, the body's bytes) and derives what the
// signature must be. Shared by the HMAC flavour (STS AssumeRole, keyed by the secret of credentials the
// emulator issued) and the X.509 flavour (Roles Anywhere, verified with the certificate's public key).
//
// Written from the SigV4 specification, independently of the daemon's signer: if both had the same
// bug, the emulator would accept what AWS refuses.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface ArrivedRequest {
  method: string;
  /** The request target as sent: path and query, still percent-encoded. */
  rawUrl: string;
  /** Header name (lower case) to every value it arrived with, in order. */
  headers: ReadonlyMap<string, readonly string[]>;
  body: Buffer;
}

export interface ParsedAuthorization {
  algorithm: string;
  /** The part before the scope: an access key ID (HMAC) or a certificate serial (X.509). */
  credential: string;
  scope: { date: string; region: string; service: string; terminator: string; text: string };
  signedHeaders: string[];
  /** Lower-case hex as sent. */
  signature: string;
}

export function arrivedRequest(req: IncomingMessage, body: Buffer): ArrivedRequest {
  const headers = new Map<string, string[]>();
  // rawHeaders keeps every occurrence of a repeated header, which SigV4 joins with commas.
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? '').toLowerCase();
    const list = headers.get(name) ?? [];
    list.push(req.rawHeaders[i + 1] ?? '');
    headers.set(name, list);
  }
  return { method: req.method ?? '', rawUrl: req.url ?? '', headers, body };
}

/** `ALG Credential=ID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex`; undefined if malformed. */
export function parseAuthorization(header: string | undefined): ParsedAuthorization | undefined {
  if (header === undefined) return undefined;
  const m = /^(\S+) +(.*)$/.exec(header.trim());
  if (m === null) return undefined;
  const fields = new Map<string, string>();
  for (const part of (m[2] ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const name = part.slice(0, eq).trim();
    if (fields.has(name)) return undefined;
    fields.set(name, part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined || fields.size !== 3) return undefined;
  const pieces = credential.split('/');
  if (pieces.length !== 5 || pieces.some((p) => p === '')) return undefined;
  const [id, date, region, service, terminator] = pieces as [string, string, string, string, string];
  if (!/^[0-9a-f]+$/.test(signature)) return undefined;
  const names = signedHeaders.split(';');
  if (names.some((n) => n === '' || n !== n.toLowerCase())) return undefined;
  return {
    algorithm: m[1] ?? '',
    credential: id,
    scope: { date, region, service, terminator, text: `${date}/${region}/${service}/${terminator}` },
    signedHeaders: names,
    signature,
  };
}

/** RFC 3986 unreserved characters stay; every other byte becomes %XX with upper-case hex. */
function encodeStrict(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Percent-decoding that keeps malformed escapes as they are, rather than failing the request. */
function decodeLenient(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Canonical URI for services other than S3: dot segments resolved, then every segment encoded, which
 * encodes a second time what the client already escaped (a literal %2F arrives as %2F and is signed as
 * %252F).
 */
export function canonicalUri(rawPath: string): string {
  const out: string[] = [];
  for (const segment of rawPath.split('/').slice(1)) {
    if (segment === '.') continue;
    if (segment === '..') {
      out.pop();
      continue;
    }
    out.push(segment);
  }
  const joined = `/${out.map((s) => encodeStrict(s)).join('/')}`;
  return joined.replace(/\/{2,}/g, '/');
}

/** Canonical query: every parameter decoded and re-encoded strictly, sorted by name and then value. */
export function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const name = eq < 0 ? p : p.slice(0, eq);
      const value = eq < 0 ? '' : p.slice(eq + 1);
      return [encodeStrict(decodeLenient(name)), encodeStrict(decodeLenient(value))] as const;
    });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

export class MissingSignedHeaderError extends Error {
  override readonly name = 'MissingSignedHeaderError';
  constructor(readonly header: string) {
    super(`The request names ${header} as signed but does not carry it`);
  }
}

/** The canonical request as the server must compute it; throws MissingSignedHeaderError. */
export function canonicalRequestOf(req: ArrivedRequest, signedHeaders: readonly string[]): string {
  const q = req.rawUrl.indexOf('?');
  const rawPath = q < 0 ? req.rawUrl : req.rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : req.rawUrl.slice(q + 1);
  const lines = signedHeaders.map((name) => {
    const values = req.headers.get(name);
    if (values === undefined) throw new MissingSignedHeaderError(name);
    const folded = values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');
    return `${name}:${folded}\n`;
  });
  return [
    req.method.toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    lines.join(''),
    signedHeaders.join(';'),
    createHash('sha256').update(req.body).digest('hex'),
  ].join('\n');
}

export function stringToSignOf(algorithm: string, amzDate: string, scope: string, canonical: string): string {
  return [algorithm, amzDate, scope, createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n');
}

/** 20240102T030405Z to epoch ms; undefined when not exactly that form or not a real date. */
export function parseAmzDate(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(value);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Date.UTC rolls 20240231 over into March; a real timestamp survives the round trip.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59)
    return undefined;
  return ms;
}

export function formatAmzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The request-time check every SigV4 service applies, with the service's wording of the two refusals
 * (a request too old, and one from the future), which clients match to detect clock skew.
 */
export function requestTimeProblem(amzDateMs: number, nowMs: number, windowMs: number): string | undefined {
  const minutes = Math.round(windowMs / 60_000);
  if (amzDateMs < nowMs - windowMs) {
    return `Signature expired: ${formatAmzDate(amzDateMs)} is now earlier than ${formatAmzDate(nowMs - windowMs)} (${formatAmzDate(nowMs)} - ${minutes} min.)`;
  }
  if (amzDateMs > nowMs + windowMs) {
    return `Signature not yet current: ${formatAmzDate(amzDateMs)} is still later than ${formatAmzDate(nowMs + windowMs)} (${formatAmzDate(nowMs)} + ${minutes} min.)`;
  }
  return undefined;
}

/** The AWS4-HMAC-SHA256 signature: HMAC chain over date, region, service and aws4_request. */
export function hmacSignature(secretAccessKey: string, scope: ParsedAuthorization['scope'], toSign: string): string {
  const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
  const kDate = hmac(`AWS4${secretAccessKey}`, scope.date);
  const kRegion = hmac(kDate, scope.region);
  const kService = hmac(kRegion, scope.service);
  const kSigning = hmac(kService, scope.terminator);
  return createHmac('sha256', kSigning).update(toSign, 'utf8').digest('hex');
}

/** One header's value as SigV4 reads it: repeats joined with commas. */
export function headerOf(req: ArrivedRequest, name: string): string | undefined {
  const values = req.headers.get(name);
  return values === undefined ? undefined : values.join(',');
}

/** Constant-time string equality: tokens and signatures are secrets an attacker probes byte by byte. */
export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Why a session-signed request is refused; each service words and codes these its own way. */
export type SessionRefusal = 'unknown-token' | 'expired' | 'stale' | 'unsigned-header' | 'mismatch';

export interface SessionSignatureCheck<C> {
  /** The credentials this emulator issued under an access key id. */
  lookup(accessKeyId: string): C | undefined;
  now(): number;
  /** How far X-Amz-Date may be from now. */
  windowMs: number;
  /** The service's error for a refusal; `detail` says what was wrong where there is more to say. */
  refuse(kind: SessionRefusal, detail: string): Error;
}

/**
 * What every service checks of an HMAC-signed request once it has checked the algorithm, the scope and
 * the date header (whose wording differs): the key is one this emulator issued, with its session token,
 * unexpired, the request time inside the window, and the signature the secret gives.
 */
export function verifySessionSignature<C extends { secretAccessKey: string; sessionToken: string; expiration: Date }>(
  req: ArrivedRequest,
  auth: ParsedAuthorization,
  amzDate: { text: string; ms: number },
  o: SessionSignatureCheck<C>,
): C {
  const issued = o.lookup(auth.credential);
  const token = headerOf(req, 'x-amz-security-token');
  if (issued === undefined || token === undefined || !sameText(token, issued.sessionToken)) {
    throw o.refuse('unknown-token', 'The security token included in the request is invalid.');
  }
  if (issued.expiration.getTime() <= o.now()) throw o.refuse('expired', 'The security token included in the request is expired');
  const stale = requestTimeProblem(amzDate.ms, o.now(), o.windowMs);
  if (stale !== undefined) throw o.refuse('stale', stale);
  let canonical: string;
  try {
    canonical = canonicalRequestOf(req, auth.signedHeaders);
  } catch (err) {
    if (err instanceof MissingSignedHeaderError) throw o.refuse('unsigned-header', err.message);
    throw err;
  }
  const expected = hmacSignature(
    issued.secretAccessKey,
    auth.scope,
    stringToSignOf(auth.algorithm, amzDate.text, auth.scope.text, canonical),
  );
  if (!sameText(expected, auth.signature)) throw o.refuse('mismatch', 'the signature does not match');
  return issued;
}
