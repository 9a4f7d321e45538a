/**
 * RFC 7512 `pkcs11:` URIs, the standard way to name a token and a key
 * (`pkcs11:token=credport;object=device`). Only what selects a key is kept.
 * A PIN in a URI (pin-value, pin-source) is refused: the URI sits in a config
 * file and in logs, and credport takes the PIN only from a 0600 file or an
 * environment variable. Error messages name attributes, never their values.
 */
import { KeyBackendError } from '../errors.js';

export type Pkcs11ObjectType = 'public' | 'private' | 'cert' | 'secret-key' | 'data';

export interface Pkcs11Uri {
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  /** CKA_LABEL of the key. */
  object?: string;
  /** CKA_ID of the key, raw bytes. */
  id?: Uint8Array;
  type?: Pkcs11ObjectType;
  slotId?: number;
  slotDescription?: string;
  slotManufacturer?: string;
  libraryManufacturer?: string;
  libraryDescription?: string;
  libraryVersion?: string;
  /** Query attribute: the module to load. */
  modulePath?: string;
  /** Query attribute: a module name for p11-kit-style lookups (not used by credport). */
  moduleName?: string;
  /** Things that were ignored, for the caller to log. */
  warnings: string[];
}

const OBJECT_TYPES: readonly Pkcs11ObjectType[] = ['public', 'private', 'cert', 'secret-key', 'data'];

const PATH_STRINGS = {
  token: 'token',
  manufacturer: 'manufacturer',
  serial: 'serial',
  model: 'model',
  object: 'object',
  'slot-description': 'slotDescription',
  'slot-manufacturer': 'slotManufacturer',
  'library-manufacturer': 'libraryManufacturer',
  'library-description': 'libraryDescription',
  'library-version': 'libraryVersion',
} as const satisfies Record<string, keyof Pkcs11Uri>;

function isPathString(name: string): name is keyof typeof PATH_STRINGS {
  return Object.hasOwn(PATH_STRINGS, name);
}

function bad(message: string): KeyBackendError {
  return new KeyBackendError('INVALID_ARGUMENT', `invalid pkcs11: URI: ${message}`);
}

/** %XX-decodes to bytes; every other character stands for its UTF-8 bytes. */
function decodeBytes(value: string, attr: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < value.length; ) {
    if (value[i] === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw bad(`attribute "${attr}" has a malformed %-escape`);
      out.push(Number.parseInt(hex, 16));
      i += 3;
    } else {
      const cp = value.codePointAt(i) ?? 0;
      const ch = String.fromCodePoint(cp);
      out.push(...Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
  }
  return Uint8Array.from(out);
}

function decodeString(value: string, attr: string): string {
  const bytes = decodeBytes(value, attr);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw bad(`attribute "${attr}" is not valid UTF-8 once decoded`);
  }
}

function splitAttribute(part: string, where: string): [string, string] {
  const eq = part.indexOf('=');
  if (eq <= 0) throw bad(`${where} attribute "${part.slice(0, 40)}" is not name=value`);
  return [part.slice(0, eq), part.slice(eq + 1)];
}

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!/^pkcs11:/i.test(uri)) throw bad('it must start with "pkcs11:"');
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q + 1);
  const out: Pkcs11Uri = { warnings: [] };
  const seen = new Set<string>();

  for (const part of path === '' ? [] : path.split(';')) {
    if (part === '') continue; // tolerate "pkcs11:token=a;;object=b" and a trailing ";"
    const [name, raw] = splitAttribute(part, 'path');
    if (seen.has(name)) throw bad(`path attribute "${name}" appears twice`);
    seen.add(name);
    if (isPathString(name)) {
      out[PATH_STRINGS[name]] = decodeString(raw, name);
    } else if (name === 'id') {
      out.id = decodeBytes(raw, name);
    } else if (name === 'type') {
      const type = decodeString(raw, name);
      if (!(OBJECT_TYPES as readonly string[]).includes(type)) throw bad(`type must be one of ${OBJECT_TYPES.join(', ')}`);
      out.type = type as Pkcs11ObjectType;
    } else if (name === 'slot-id') {
      const v = decodeString(raw, name);
      if (!/^[0-9]{1,15}$/.test(v)) throw bad('slot-id must be a decimal number');
      out.slotId = Number(v);
    } else {
      // RFC 7512 lets vendors add attributes; they cannot select anything here.
      out.warnings.push(`pkcs11: URI path attribute "${name}" is not used by credport and was ignored`);
    }
  }

  for (const part of query === '' ? [] : query.split('&')) {
    if (part === '') continue;
    const [name, raw] = splitAttribute(part, 'query');
    if (name === 'pin-value' || name === 'pin-source') {
      // Named, never quoted: the value may be the PIN itself.
      throw bad(`"${name}" is not accepted: never put a PIN in a URI; give it with pin_file (a 0600 file) or pin_env`);
    }
    if (seen.has(`?${name}`)) throw bad(`query attribute "${name}" appears twice`);
    seen.add(`?${name}`);
    if (name === 'module-path') {
      out.modulePath = decodeString(raw, name);
    } else if (name === 'module-name') {
      out.moduleName = decodeString(raw, name);
      out.warnings.push('pkcs11: URI attribute "module-name" is not used by credport (give the module path)');
    } else {
      out.warnings.push(`pkcs11: URI query attribute "${name}" is not used by credport and was ignored`);
    }
  }
  return out;
}

const PCHAR_SAFE = /[A-Za-z0-9\-._~:[\]@!$'()*+,=&]/;

function encode(value: string | Uint8Array, always = false): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  let out = '';
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    out += !always && b < 0x80 && PCHAR_SAFE.test(ch) ? ch : `%${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Formats a URI for messages and `credport status` (no PIN can be in it). */
export function formatPkcs11Uri(parts: { token?: string; serial?: string; object?: string; id?: Uint8Array }): string {
  const attrs: string[] = [];
  if (parts.token !== undefined) attrs.push(`token=${encode(parts.token)}`);
  if (parts.serial !== undefined) attrs.push(`serial=${encode(parts.serial)}`);
  if (parts.object !== undefined) attrs.push(`object=${encode(parts.object)}`);
  if (parts.id !== undefined && parts.id.length > 0) attrs.push(`id=${encode(parts.id, true)}`);
  attrs.push('type=private');
  return `pkcs11:${attrs.join(';')}`;
}
