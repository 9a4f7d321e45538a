/**
 * Reading the daemon's token file (server/token.ts writes and compares it). Apart from token.ts
 * because the CLI only reads it, and token.ts needs node:crypto, which the CLI's slim path does
 * without (some 7 ms of every `credport auth`).
 */
import { readSecretFile } from '../util/secure-file.js';

export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
}

const MIN_TOKEN_BYTES = 32;

export function readTokenFile(path: string): string {
  const raw = readSecretFile(path, 'token file', "it is created when 'credport serve' starts").toString('utf8');
  if (/[\r\n]/.test(raw)) {
    throw new TokenFileError(
      `token file ${path} contains a line break; SDKs reject such tokens. Remove the file and restart credport to create a new one`,
    );
  }
  if (!/^[\x21-\x7e]+$/.test(raw) || raw.length < Math.ceil((MIN_TOKEN_BYTES * 4) / 3)) {
    throw new TokenFileError(
      `token file ${path} does not hold a token of at least 256 bits of printable characters; remove it and restart credport to create a new one`,
    );
  }
  return raw;
}
