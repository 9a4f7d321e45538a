/**
 * The federated token file (AZURE_FEDERATED_TOKEN_FILE) for SDKs that do the client-assertion
 * exchange themselves (WorkloadIdentityCredential). It holds a client assertion, a bearer credential
 * for an hour: 0600, beside the daemon token, replaced atomically so a reader never sees half a token,
 * and an existing file that is not ours is refused rather than overwritten.
 */
import { dirname, join } from 'node:path';
import { ensurePrivateDir, readSecretFile, SecretFileNotFoundError, writeFileAtomic } from '../../util/secure-file.js';

/** The SDKs re-read the file every 5-10 minutes: an hour leaves every reader a usable token. */
export const FILE_ASSERTION_SECONDS = 3600;

export function federatedTokenFile(tokenFile: string, profile: string): string {
  return join(dirname(tokenFile), `azure-${profile}.federated-token`);
}

export function writeFederatedToken(path: string, token: string): void {
  try {
    readSecretFile(path, 'federated token file', '');
  } catch (err) {
    if (!(err instanceof SecretFileNotFoundError)) throw err;
  }
  ensurePrivateDir(dirname(path));
  writeFileAtomic(path, token, 0o600);
}
