/** PEM text to DER certificates. */

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/** Every CERTIFICATE block in a PEM text, as DER; other blocks (keys, parameters) are ignored. */
export function pemCertificates(text: string): Uint8Array[] {
  return [...text.matchAll(PEM_CERTIFICATE)].map((m) => new Uint8Array(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')));
}
