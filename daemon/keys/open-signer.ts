/**
 * Opens, creates and removes the device key in whichever backend the [key]
 * table names. Hardware backends are imported on demand: they load the native
 * addon, which a file-key user may not have built.
 */
import { existsSync, unlinkSync } from 'node:fs';
import type { ResolvedKey } from '../config/load.js';
import { FileKeySigner } from './file/signer.js';
import type { KeySigner } from './signer.js';

type Pkcs11Key = Extract<ResolvedKey, { backend: 'pkcs11' }>;

function pkcs11Options(key: Pkcs11Key) {
  const { backend: _b, ...o } = key;
  return o;
}

export async function openSigner(key: ResolvedKey): Promise<KeySigner> {
  switch (key.backend) {
    case 'file':
      return FileKeySigner.open(key.path);
    case 'pkcs11':
      return (await import('./pkcs11/signer.js')).Pkcs11Signer.open(pkcs11Options(key), process.env);
    case 'secure-enclave':
      return (await import('./secure-enclave/signer.js')).SecureEnclaveSigner.open({ tag: key.tag });
  }
}

/** Creates the key; an existing key is an error (credport never replaces a key). */
export async function createKey(key: ResolvedKey): Promise<KeySigner> {
  switch (key.backend) {
    case 'file':
      return FileKeySigner.create(key.path);
    case 'pkcs11':
      return (await import('./pkcs11/signer.js')).Pkcs11Signer.create(pkcs11Options(key), process.env);
    case 'secure-enclave':
      return (await import('./secure-enclave/signer.js')).SecureEnclaveSigner.create({ tag: key.tag, userPresence: key.userPresence });
  }
}

/** Whether a key already exists where the config points, without opening hardware sessions for file keys. */
export async function keyExists(key: ResolvedKey): Promise<boolean> {
  if (key.backend === 'file') return existsSync(key.path);
  try {
    await (await openSigner(key)).close();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'KEY_NOT_FOUND') return false;
    throw err;
  }
}

/** Destroys the key. There is no undo: the CLI asks first. */
export async function removeKey(key: ResolvedKey): Promise<void> {
  switch (key.backend) {
    case 'file':
      unlinkSync(key.path);
      return;
    case 'pkcs11':
      return (await import('./pkcs11/signer.js')).Pkcs11Signer.remove(pkcs11Options(key), process.env);
    case 'secure-enclave':
      return (await import('./secure-enclave/signer.js')).SecureEnclaveSigner.remove({ tag: key.tag });
  }
}

/** Human description of where the key lives, from config alone (no hardware access). */
export function keyLocation(key: ResolvedKey): string {
  switch (key.backend) {
    case 'file':
      return key.path;
    case 'pkcs11':
      return `${key.uri ?? `token "${key.tokenLabel ?? ''}"`}${key.keyLabel ? ` key "${key.keyLabel}"` : ''}${key.keyId ? ` id ${key.keyId}` : ''} via ${key.module}`;
    case 'secure-enclave':
      return `Secure Enclave tag ${key.tag}${key.userPresence ? ' (user presence)' : ''}`;
  }
}
