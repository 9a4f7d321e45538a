/**
 * The per-install secret Azure's SDKs send as X-IDENTITY-HEADER (from IDENTITY_HEADER). Created once
 * beside the daemon token and never rotated: a restart must not break the shells `credport env` set up.
 */
import { dirname, join } from 'node:path';
import { ensureTokenFile } from '../../server/token.js';
import { readTokenFile } from '../../server/token-file.js';

export function identityHeaderFile(tokenFile: string): string {
  return join(dirname(tokenFile), 'azure-identity-header.secret');
}

/** Reads the secret, creating it (0600, 256 random bits) when absent. */
export function ensureIdentityHeader(tokenFile: string): string {
  return ensureTokenFile(identityHeaderFile(tokenFile));
}

export function readIdentityHeader(tokenFile: string): string {
  return readTokenFile(identityHeaderFile(tokenFile));
}
