/**
 * The external_account credential file (GOOGLE_APPLICATION_CREDENTIALS) that
 * points Google's client libraries at the daemon's subject-token route. The
 * libraries fetch a fresh subject token from it at every exchange and call STS
 * (and IAM Credentials, when a service account is impersonated) themselves.
 * The file holds the per-install secret header, so it is a secret file: 0600,
 * written atomically, and an existing file that is a link, another user's or
 * readable by others is refused rather than replaced.
 */
import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensurePrivateDir, readSecretFile, SecretFileNotFoundError, UnsafeFileError, writeFileAtomic } from '../../../util/secure-file.js';
import { SUBJECT_TOKEN_FIELD, SUBJECT_TOKEN_SECRET_HEADER, subjectTokenPath } from './subject-token-routes.js';

export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const DEFAULT_STS_ENDPOINT = 'https://sts.googleapis.com';
export const DEFAULT_IAMCREDENTIALS_ENDPOINT = 'https://iamcredentials.googleapis.com';

/** google-auth-library refuses a longer impersonation URL (RangeError "URL is too long"). */
const MAX_IMPERSONATION_URL = 256;

export interface ExternalAccountInput {
  /** The daemon's base URL as clients reach it, e.g. http://127.0.0.1:9911 */
  daemonUrl: string;
  profile: string;
  /** The workload identity provider's full resource name (//iam.googleapis.com/projects/N/...). */
  audience: string;
  secret: string;
  serviceAccount?: string;
  stsEndpoint?: string;
  iamcredentialsEndpoint?: string;
  /** Lifetime of the impersonated token; only written with a service account. */
  lifetimeSeconds?: number;
}

export interface ExternalAccountFile {
  type: 'external_account';
  audience: string;
  subject_token_type: typeof JWT_TOKEN_TYPE;
  token_url: string;
  service_account_impersonation_url?: string;
  service_account_impersonation?: { token_lifetime_seconds: number };
  credential_source: {
    url: string;
    headers: Record<string, string>;
    format: { type: 'json'; subject_token_field_name: string };
  };
}

export class ExternalAccountError extends Error {
  override readonly name = 'ExternalAccountError';
}

function baseUrl(what: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ExternalAccountError(`${what} ${JSON.stringify(raw.slice(0, 200))} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ExternalAccountError(`${what} must be an http or https URL`);
  if (u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
    throw new ExternalAccountError(`${what} must be a plain base URL (no query, fragment or user info)`);
  }
  return u.href.replace(/\/+$/, '');
}

export function externalAccountJson(i: ExternalAccountInput): ExternalAccountFile {
  const file: ExternalAccountFile = {
    type: 'external_account',
    audience: i.audience,
    subject_token_type: JWT_TOKEN_TYPE,
    token_url: `${baseUrl('sts_endpoint', i.stsEndpoint ?? DEFAULT_STS_ENDPOINT)}/v1/token`,
    credential_source: {
      url: `${baseUrl('daemon URL', i.daemonUrl)}${subjectTokenPath(i.profile)}`,
      headers: { [SUBJECT_TOKEN_SECRET_HEADER]: i.secret },
      format: { type: 'json', subject_token_field_name: SUBJECT_TOKEN_FIELD },
    },
  };
  if (i.serviceAccount !== undefined) {
    // The libraries read the email back out of this URL with /serviceAccounts\/([^:]+):generateAccessToken$/.
    if (!/^[^:/?#\s]+@[^:/?#\s]+$/.test(i.serviceAccount)) throw new ExternalAccountError('service_account must be an email address');
    const url = `${baseUrl('iamcredentials_endpoint', i.iamcredentialsEndpoint ?? DEFAULT_IAMCREDENTIALS_ENDPOINT)}/v1/projects/-/serviceAccounts/${i.serviceAccount}:generateAccessToken`;
    if (url.length > MAX_IMPERSONATION_URL) {
      throw new ExternalAccountError(
        `the impersonation URL would be ${url.length} characters; google-auth-library refuses more than ${MAX_IMPERSONATION_URL}`,
      );
    }
    file.service_account_impersonation_url = url;
    if (i.lifetimeSeconds !== undefined) file.service_account_impersonation = { token_lifetime_seconds: i.lifetimeSeconds };
  }
  return file;
}

/**
 * Writes the file (0600, atomically). An existing file must be a regular file
 * of ours with mode 0600: a symlink or a file planted by someone else is
 * refused, never followed or overwritten.
 */
export function writeExternalAccountFile(path: string, file: ExternalAccountFile): void {
  let exists = true;
  try {
    if (lstatSync(path).isSymbolicLink())
      throw new UnsafeFileError(`credential file ${path} is a symbolic link; refusing to write through it`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    exists = false;
  }
  if (exists) {
    try {
      readSecretFile(path, 'credential file', '');
    } catch (err) {
      // Gone between the two checks: fine, it is written below.
      if (!(err instanceof SecretFileNotFoundError)) throw err;
    }
  }
  ensurePrivateDir(dirname(path));
  writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
}
