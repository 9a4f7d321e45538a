/** The macOS Secure Enclave backend. Its signer loads the native addon, so it is imported only when used. */
import type { ResolvedKey } from '../../config/load.js';
import type { KeyBackend } from '../backend.js';

type EnclaveKey = Extract<ResolvedKey, { backend: 'secure-enclave' }>;

const signer = async () => (await import('./signer.js')).SecureEnclaveSigner;

export const secureEnclaveBackend: KeyBackend<EnclaveKey> = {
  name: 'secure-enclave',
  open: async (k) => (await signer()).open({ tag: k.tag }),
  create: async (k) => (await signer()).create({ tag: k.tag, userPresence: k.userPresence }),
  remove: async (k) => (await signer()).remove({ tag: k.tag }),
  location: (k) => `Secure Enclave tag ${k.tag}${k.userPresence ? ' (user presence)' : ''}`,
};
