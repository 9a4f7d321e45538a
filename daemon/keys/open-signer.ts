/**
 * Opens, creates and removes the device key in whichever backend the [key] table names, through the
 * backend registry (keys/registry.ts). Hardware backends load the native addon only when used.
 */
import type { ResolvedKey } from '../config/load.js';
import type { KeyOpenContext } from './backend.js';
import { KeyBackendError } from './errors.js';
import { keyBackend } from './registry.js';
import type { KeySigner } from './signer.js';

export function openSigner(key: ResolvedKey, context?: KeyOpenContext): Promise<KeySigner> {
  return keyBackend(key).open(key, context);
}

/**
 * Opens the [rsa_key] table's key, which must sign RS256 whatever backend holds it (a PKCS#11 label
 * naming an EC key is a config mistake, said here rather than as a refusal from Entra ID).
 */
export async function openRsaSigner(key: ResolvedKey, context?: KeyOpenContext): Promise<KeySigner> {
  const signer = await openSigner(key, context);
  if (signer.algorithm !== 'RS256') {
    await signer.close();
    throw new KeyBackendError(
      'INVALID_ARGUMENT',
      `[rsa_key] names a ${signer.algorithm} key at ${keyLocation(key)}; it must be an RSA key (2048 bits or more)`,
    );
  }
  return signer;
}

/** Creates the key; an existing key is an error (credport never replaces a key). */
export function createKey(key: ResolvedKey): Promise<KeySigner> {
  return keyBackend(key).create(key);
}

/** Whether a key already exists where the config points, without opening hardware sessions for file keys. */
export async function keyExists(key: ResolvedKey): Promise<boolean> {
  const backend = keyBackend(key);
  if (backend.exists) return backend.exists(key);
  try {
    await (await backend.open(key)).close();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'KEY_NOT_FOUND') return false;
    throw err;
  }
}

/** Destroys the key. There is no undo: the CLI asks first. */
export function removeKey(key: ResolvedKey): Promise<void> {
  return keyBackend(key).remove(key);
}

/** Human description of where the key lives, from config alone (no hardware access). */
export function keyLocation(key: ResolvedKey): string {
  return keyBackend(key).location(key);
}
