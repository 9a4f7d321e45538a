/** Every key backend: one line each. */
import type { ResolvedKey } from '../config/load.js';
import type { KeyBackend } from './backend.js';
import { fileBackend } from './file/backend.js';
import { pkcs11Backend } from './pkcs11/backend.js';
import { secureEnclaveBackend } from './secure-enclave/backend.js';

const BACKENDS: { [B in ResolvedKey['backend']]: KeyBackend<Extract<ResolvedKey, { backend: B }>> } = {
  file: fileBackend,
  pkcs11: pkcs11Backend,
  'secure-enclave': secureEnclaveBackend,
};

/** The backend a [key] table names. */
export function keyBackend<K extends ResolvedKey>(key: K): KeyBackend<K> {
  return BACKENDS[key.backend] as unknown as KeyBackend<K>;
}
