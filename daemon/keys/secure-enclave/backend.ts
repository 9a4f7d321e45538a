/** The macOS Secure Enclave backend. Its signer loads the native addon, so it is imported only when used. */
import { existsSync } from 'node:fs';
import type { ResolvedKey } from '../../config/load.js';
import type { KeyBackend } from '../backend.js';

type EnclaveKey = Extract<ResolvedKey, { backend: 'secure-enclave' }>;

const signer = async () => (await import('./signer.js')).SecureEnclaveSigner;

export const secureEnclaveBackend: KeyBackend<EnclaveKey> = {
  name: 'secure-enclave',
  open: async (k) => (await signer()).open({ path: k.path, userPresence: k.userPresence }),
  create: async (k) => (await signer()).create({ path: k.path, userPresence: k.userPresence }),
  remove: async (k) => (await signer()).remove({ path: k.path }),
  // The key file is the key's only handle: no Secure Enclave call needed to know whether it exists.
  exists: async (k) => existsSync(k.path),
  location: (k) => `Secure Enclave key file ${k.path}${k.userPresence ? ' (user presence)' : ''}`,
};
