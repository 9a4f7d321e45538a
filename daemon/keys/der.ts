/**
 * ECDSA signature encodings. JWS (and PKCS#11's CKM_ECDSA) use the raw,
 * fixed-width r||s form; X.509, SigV4-X509 and the Secure Enclave use the DER
 * ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER }. The native addon has the
 * same conversion in C++ (enclave-addon/src/der.cc); tests hold the two to
 * byte-identical output.
 */
import { KeyBackendError } from './errors.js';

const TAG_INTEGER = 0x02;
const TAG_SEQUENCE = 0x30;
/** P-521's field: the largest curve anyone signs with. */
const MAX_FIELD_SIZE = 66;

function invalid(message: string): KeyBackendError {
  return new KeyBackendError('INVALID_ARGUMENT', `not a valid ECDSA signature: ${message}`);
}

function lengthBytes(n: number): number[] {
  // Our structures stay below 256 bytes: short form, or 0x81 and one byte.
  return n < 0x80 ? [n] : [0x81, n];
}

function integer(value: Uint8Array): number[] {
  let start = 0;
  // Minimal encoding: drop leading zero bytes...
  while (start < value.length - 1 && value[start] === 0) start++;
  const body = Array.from(value.subarray(start));
  // ...but keep the value positive: a set high bit needs one zero in front.
  if ((body[0] ?? 0) & 0x80) body.unshift(0);
  return [TAG_INTEGER, ...lengthBytes(body.length), ...body];
}

/** r||s (two equal halves) -> DER. */
export function rawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 2 * MAX_FIELD_SIZE) {
    throw invalid(`raw signature must be r||s of equal halves, got ${raw.length} bytes`);
  }
  const half = raw.length / 2;
  const body = [...integer(raw.subarray(0, half)), ...integer(raw.subarray(half))];
  return Uint8Array.from([TAG_SEQUENCE, ...lengthBytes(body.length), ...body]);
}

class Reader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  byte(what: string): number {
    const b = this.bytes[this.pos];
    if (b === undefined) throw invalid(`truncated ${what}`);
    this.pos++;
    return b;
  }

  length(what: string): number {
    const first = this.byte(what);
    if (first < 0x80) return first;
    if (first !== 0x81) throw invalid(`${what} length uses an unsupported form`);
    const n = this.byte(what);
    if (n < 0x80) throw invalid(`${what} length is not minimally encoded`);
    return n;
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw invalid(`truncated ${what}`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function readInteger(r: Reader, size: number, out: Uint8Array, offset: number, name: string): void {
  if (r.byte(name) !== TAG_INTEGER) throw invalid(`${name} is not an INTEGER`);
  const n = r.length(name);
  if (n === 0) throw invalid(`${name} is empty`);
  let v = r.take(n, name);
  if ((v[0] ?? 0) & 0x80) throw invalid(`${name} is negative`);
  if (v[0] === 0 && v.length > 1) {
    if (((v[1] ?? 0) & 0x80) === 0) throw invalid(`${name} has a superfluous leading zero`);
    v = v.subarray(1);
  }
  if (v.length > size) throw invalid(`${name} is longer than ${size} bytes`);
  // Right-align: DER drops leading zero bytes, r||s keeps the fixed width.
  out.set(v, offset + size - v.length);
}

/** DER (strict) -> r||s with each half `size` bytes (32 for P-256). */
export function derToRaw(der: Uint8Array, size = 32): Uint8Array {
  if (!Number.isInteger(size) || size < 1 || size > MAX_FIELD_SIZE) throw invalid(`unsupported field size ${size}`);
  const r = new Reader(der);
  if (r.byte('SEQUENCE') !== TAG_SEQUENCE) throw invalid('not a DER SEQUENCE');
  const body = r.length('SEQUENCE');
  if (body !== r.remaining) throw invalid('SEQUENCE length does not match the signature length');
  const raw = new Uint8Array(2 * size);
  readInteger(r, size, raw, 0, 'r');
  readInteger(r, size, raw, size, 's');
  if (r.remaining !== 0) throw invalid('trailing bytes after the signature');
  return raw;
}
