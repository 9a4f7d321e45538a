// Google's two error shapes. STS is an OAuth 2.0 token endpoint and answers RFC 6749 style
// ({error, error_description}); IAM Credentials is a Google API and answers with the google.rpc.Status
// envelope ({error: {code, message, status}}). Clients parse one or the other, so each service renders
// only its own.

import type { ServerResponse } from 'node:http';

/** An STS refusal: an OAuth error code (invalid_grant, invalid_request, invalid_target, ...) and a description. */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

/** The canonical google.rpc codes IAM Credentials answers with, as far as the emulator uses them. */
export type GoogleRpcStatus = 'INVALID_ARGUMENT' | 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'NOT_FOUND' | 'UNAVAILABLE' | 'INTERNAL';

/** An IAM Credentials refusal: HTTP status, canonical status name and message. */
export class GoogleApiError extends Error {
  override readonly name = 'GoogleApiError';
  constructor(
    readonly code: number,
    readonly status: GoogleRpcStatus,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // Tokens travel in these bodies; nothing on the way may keep a copy.
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendOAuthError(res: ServerResponse, err: OAuthError): void {
  sendJson(res, err.status, { error: err.error, error_description: err.message });
}

export function sendGoogleApiError(res: ServerResponse, err: GoogleApiError): void {
  const headers: Record<string, string> = err.code === 401 ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' } : {};
  sendJson(res, err.code, { error: { code: err.code, message: err.message, status: err.status } }, headers);
}
