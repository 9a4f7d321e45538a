/**
 * KeySigner backends return ECDSA signatures as raw r||s (the JWS form), while SigV4-X509 wants the
 * X.509 form: a DER SEQUENCE of two INTEGERs. This folder keeps its own small converter so that the
 * provider does not depend on the key backends' internals; daemon/keys/der.ts may replace it later.
 */

function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** A non-negative big-endian integer as DER INTEGER content: minimal, with a 0x00 when the top bit is set. */
function derUnsignedInteger(value: Uint8Array): number[] {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const body = Array.from(value.subarray(start));
  if (body.length === 0) body.push(0);
  if ((body[0] ?? 0) & 0x80) body.unshift(0);
  return [0x02, ...derLength(body.length), ...body];
}

/** Raw r||s (both halves the curve's size: 32 bytes for P-256, 48 for P-384) to an Ecdsa-Sig-Value. */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 264) {
    throw new Error(`an ECDSA raw signature has two equal halves; got ${raw.length} bytes`);
  }
  const half = raw.length / 2;
  const r = derUnsignedInteger(raw.subarray(0, half));
  const s = derUnsignedInteger(raw.subarray(half));
  return Uint8Array.from([0x30, ...derLength(r.length + s.length), ...r, ...s]);
}
