/**
 * The two helpers ajv's generated validators call (validators.generated.ts): here rather than loaded
 * from ajv, so that validating a config loads nothing of ajv and no CommonJS at all.
 */

/** String length in code points, as JSON Schema's minLength and maxLength count it (ajv's ucs2length). */
export function ucs2length(str: string): number {
  let length = 0;
  for (let pos = 0; pos < str.length; length++) {
    const c = str.charCodeAt(pos++);
    // A high surrogate followed by a low one is one character.
    if (c >= 0xd800 && c <= 0xdbff && pos < str.length && (str.charCodeAt(pos) & 0xfc00) === 0xdc00) pos++;
  }
  return length;
}

/** Deep equality of parsed config values (uniqueItems): primitives, arrays, tables and TOML dates. */
export function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null)
    return typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b);
  if (a.constructor !== b.constructor) return false;
  if (Array.isArray(a)) {
    const bs = b as unknown[];
    return a.length === bs.length && a.every((x, i) => equal(x, bs[i]));
  }
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b, k) && equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}
