/** The PKCS#11 backend. Its signer loads the native addon, so it is imported only when used. */
import type { ResolvedKey } from '../../config/load.js';
import type { KeyBackend } from '../backend.js';

type Pkcs11Key = Extract<ResolvedKey, { backend: 'pkcs11' }>;

function options(key: Pkcs11Key) {
  const { backend: _b, ...o } = key;
  return o;
}

const signer = async () => (await import('./signer.js')).Pkcs11Signer;

export const pkcs11Backend: KeyBackend<Pkcs11Key> = {
  name: 'pkcs11',
  open: async (k, context) => (await signer()).open({ ...options(k), ...(context?.now ? { now: context.now } : {}) }, process.env),
  create: async (k) => (await signer()).create(options(k), process.env),
  remove: async (k) => (await signer()).remove(options(k), process.env),
  location: (k) =>
    `${k.uri ?? `token "${k.tokenLabel ?? ''}"`}${k.keyLabel ? ` key "${k.keyLabel}"` : ''}${k.keyId ? ` id ${k.keyId}` : ''} via ${k.module}`,
};
