// The Google Cloud half of the emulator: STS under one path prefix and IAM Credentials under another,
// on the same server as the AWS services. Distinct prefixes (rather than Google's two host names with
// the same /v1 paths) mean a client that sends a request to the wrong service's URL fails here as it
// would against Google.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GoogleContext } from './context.js';
import {
  generateAccessTokenTarget,
  handleGenerateAccessToken,
  sendIamCredentialsInvalid,
  sendIamCredentialsNotFound,
} from './iamcredentials.js';
import { OAuthError, sendOAuthError } from './errors.js';
import { generateIdTokenTarget, handleGenerateIdToken } from './id-tokens.js';
import { STS_TOKEN_PATH, handleGoogleStsRequest } from './sts.js';
import type { GoogleTokenRecord } from './token-store.js';

/** Base of the STS emulation: a client's token_url is `${base}/v1/token`. */
export const GCP_STS_PREFIX = '/gcp/sts';
/** Base of the IAM Credentials emulation: `${base}/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`. */
export const GCP_IAM_CREDENTIALS_PREFIX = '/gcp/iamcredentials';

export type GoogleService = 'gcp-sts' | 'iamcredentials';

/** Which Google service a path belongs to, or undefined for a path that is not Google's. */
export function googleServiceOf(path: string): GoogleService | undefined {
  if (path === GCP_STS_PREFIX || path.startsWith(`${GCP_STS_PREFIX}/`)) return 'gcp-sts';
  if (path === GCP_IAM_CREDENTIALS_PREFIX || path.startsWith(`${GCP_IAM_CREDENTIALS_PREFIX}/`)) return 'iamcredentials';
  return undefined;
}

/** Answers one request to a Google path; never throws. Resolves true when a token was issued. */
export async function handleGoogleRequest(req: IncomingMessage, res: ServerResponse, path: string, ctx: GoogleContext): Promise<boolean> {
  if (googleServiceOf(path) === 'gcp-sts') {
    if (path.slice(GCP_STS_PREFIX.length) === STS_TOKEN_PATH) return handleGoogleStsRequest(req, res, ctx);
    sendOAuthError(res, new OAuthError(404, 'invalid_request', 'Not found: the token exchange is POST /v1/token'));
    return false;
  }
  const idTokenFor = generateIdTokenTarget(path.slice(GCP_IAM_CREDENTIALS_PREFIX.length));
  if (idTokenFor !== undefined) return handleGenerateIdToken(req, res, idTokenFor, ctx);
  const target = generateAccessTokenTarget(path.slice(GCP_IAM_CREDENTIALS_PREFIX.length));
  if (target === undefined) {
    sendIamCredentialsNotFound(res);
    return false;
  }
  if ('invalid' in target) {
    sendIamCredentialsInvalid(res, target.invalid);
    return false;
  }
  return handleGenerateAccessToken(req, res, target.email, ctx);
}

/** What a test learns about a token: whether this emulator issued it, to whom, for what, until when. */
export type GoogleTokenInfo = GoogleTokenRecord & { expired: boolean };

export function describeToken(ctx: GoogleContext, token: string): GoogleTokenInfo | undefined {
  if (typeof token !== 'string') return undefined;
  const record = ctx.tokens.lookup(token);
  if (record === undefined) return undefined;
  return { ...record, scopes: [...record.scopes], expiresAt: new Date(record.expiresAt), expired: record.expiresAt.getTime() <= ctx.now() };
}
