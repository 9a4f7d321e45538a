/** The file backend: a PKCS#8 PEM, mode 0600 (P-256 for [key], RSA for [rsa_key]). */
import { existsSync, unlinkSync } from 'node:fs';
import type { ResolvedKey } from '../../config/load.js';
import type { KeyBackend } from '../backend.js';
import { FileKeySigner } from './signer.js';

type FileKey = Extract<ResolvedKey, { backend: 'file' }>;

export const fileBackend: KeyBackend<FileKey> = {
  name: 'file',
  open: async (k) => FileKeySigner.open(k.path, k.algorithm),
  create: async (k) => FileKeySigner.create(k.path, k.algorithm),
  remove: async (k) => unlinkSync(k.path),
  exists: async (k) => existsSync(k.path),
  location: (k) => k.path,
};
