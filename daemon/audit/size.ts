/** Sizes as the config writes them ("512k", "10m", "1g"), in bytes; k, m and g are powers of 1024. */
const UNITS = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;

export function parseSize(s: string): number {
  const m = /^([1-9][0-9]{0,9})([kmg])$/.exec(s);
  if (!m) throw new Error(`expected a size like "512k", "10m" or "1g", got "${s}"`);
  return Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
}
