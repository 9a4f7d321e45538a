/**
 * The Secure Enclave key's file: its token object id (an opaque blob only this Mac's Secure Enclave can
 * turn back into the key) and its public point, which proves on every open that the blob gave back the
 * key it was made with. The blob is useless anywhere else, but it is the key's only handle (the key is
 * not in the keychain), so the file is kept like a secret: 0600, created exclusively in a 0700 directory,
 * never overwritten.
 */
import { SecretFileNotFoundError, createSecretFile, readSecretFile } from '../../util/secure-file.js';
import { KeyBackendError } from '../errors.js';

const FORMAT = 'credport secure-enclave key 1';
/** A token object id is a few hundred bytes; the file is refused long before anything is that large. */
const MAX_FILE_BYTES = 64 * 1024;

export interface EnclaveKeyFile {
  /** 65 bytes: 04 || X || Y. */
  publicKey: Buffer;
  tokenObject: Buffer;
  userPresence: boolean;
}

function damaged(path: string, why: string): KeyBackendError {
  return new KeyBackendError('KEY_NOT_FOUND', `Secure Enclave key file ${path} is damaged (${why}); create a new key with 'credport init'`);
}

export function readEnclaveKeyFile(path: string): EnclaveKeyFile {
  let bytes: Buffer;
  try {
    bytes = readSecretFile(path, 'Secure Enclave key file', "create the key with 'credport init --backend secure-enclave'");
  } catch (err) {
    const code = err instanceof SecretFileNotFoundError ? 'KEY_NOT_FOUND' : 'INVALID_ARGUMENT';
    throw new KeyBackendError(code, (err as Error).message, { cause: err });
  }
  if (bytes.length > MAX_FILE_BYTES) throw damaged(path, 'too large');
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw damaged(path, 'not JSON');
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (o.format !== FORMAT) throw damaged(path, `format is not "${FORMAT}"`);
  if (typeof o.publicKey !== 'string' || typeof o.tokenObject !== 'string' || typeof o.userPresence !== 'boolean')
    throw damaged(path, 'publicKey, tokenObject or userPresence missing');
  const publicKey = Buffer.from(o.publicKey, 'base64url');
  const tokenObject = Buffer.from(o.tokenObject, 'base64url');
  if (publicKey.length !== 65 || publicKey[0] !== 0x04) throw damaged(path, 'publicKey is not an uncompressed P-256 point');
  if (tokenObject.length === 0) throw damaged(path, 'tokenObject is empty');
  return { publicKey, tokenObject, userPresence: o.userPresence };
}

/** Writes a new key file; an existing file is KEY_EXISTS (credport never replaces a key). */
export function createEnclaveKeyFile(path: string, k: EnclaveKeyFile): void {
  const text = `${JSON.stringify(
    {
      format: FORMAT,
      publicKey: k.publicKey.toString('base64url'),
      tokenObject: k.tokenObject.toString('base64url'),
      userPresence: k.userPresence,
    },
    null,
    2,
  )}\n`;
  try {
    createSecretFile(path, text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new KeyBackendError('KEY_EXISTS', `Secure Enclave key file ${path} already exists; credport never replaces a key`);
    throw err;
  }
}
