/**
 * The per-install secret Google's clients send with every subject-token request (it is written into
 * their external_account file). Created once beside the daemon token and never rotated: a restart
 * must not invalidate the files `credport env` wrote.
 */
import { dirname, join } from 'node:path';
import { ensureTokenFile } from '../../server/token.js';
import { readTokenFile } from '../../server/token-file.js';

/** `tokenFile`: the daemon's token file ([daemon] token_file); the secret sits beside it. */
export function subjectTokenSecretFile(tokenFile: string): string {
  return join(dirname(tokenFile), 'gcp-subject-token.secret');
}

/** Reads the secret, creating it (0600, 256 random bits) when absent. */
export function ensureSubjectTokenSecret(tokenFile: string): string {
  return ensureTokenFile(subjectTokenSecretFile(tokenFile));
}

export function readSubjectTokenSecret(tokenFile: string): string {
  return readTokenFile(subjectTokenSecretFile(tokenFile));
}
