/**
 * The error catalogue: every code credport itself answers or records, with its HTTP status or whether a
 * retry can help, and one line for the user. Codes are stable: scripts and dashboards match on them,
 * so a code is never renamed or reused, only added. docs/errors.md is generated from this file.
 *
 * Not in here: codes an upstream chose (AWS's AccessDenied, Google's invalid_grant), which credport
 * passes on as they came, and the codes of protocols credport speaks for a client (the GCE metadata
 * server's and Google's OAuth error names), which belong to those protocols.
 */

export interface ServerErrorEntry {
  readonly status: number;
  readonly summary: string;
}

/** What an endpoint answers, as the JSON body {Code, Message}. */
export const SERVER_ERRORS = {
  BadRequest: { status: 400, summary: 'The request could not be parsed (malformed HTTP, an undecodable URL, several Host headers).' },
  RequestTargetTooLong: { status: 414, summary: 'The request target is longer than any credport path.' },
  MissingToken: {
    status: 401,
    summary: 'No Authorization header; clients read the daemon token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.',
  },
  InvalidToken: { status: 401, summary: 'The Authorization header is not the daemon token (it changes at every start).' },
  ForbiddenPeer: { status: 403, summary: 'The connection does not come from a loopback address.' },
  ForbiddenHost: {
    status: 403,
    summary: 'The Host header is not a loopback name with the daemon port, or the target is not a path (DNS rebinding defence).',
  },
  ForbiddenBrowserRequest: { status: 403, summary: 'The request carries headers only browsers send (Origin, Sec-Fetch-*).' },
  UnidentifiedPeer: { status: 403, summary: 'The kernel could not say which user holds the connection; credport never fails open.' },
  ForbiddenUser: {
    status: 403,
    summary: 'The connecting user is neither the daemon owner nor in allow_uids (or monitor_uids, for monitoring endpoints).',
  },
  ForbiddenExecutable: { status: 403, summary: "The connecting program is not in the profile's allow_executables." },
  ProfileNotFound: { status: 404, summary: "No profile of that name is served by this endpoint (another cloud's profiles are not)." },
  NotFound: { status: 404, summary: 'No such endpoint.' },
  InternalError: { status: 500, summary: 'An unexpected error; the daemon log has the details.' },
  TooManyWaiting: {
    status: 503,
    summary: 'More requests wait for the starting daemon than it holds; the connection is closed. Retry after a second.',
  },
} as const satisfies Record<string, ServerErrorEntry>;

export type ServerErrorCode = keyof typeof SERVER_ERRORS;

export interface ErrorBody {
  Code: string;
  Message: string;
}

/** An endpoint's answer for a catalogued error: its status and the {Code, Message} body. */
export function serverError(code: ServerErrorCode, message: string): { status: number; body: ErrorBody } {
  return { status: SERVER_ERRORS[code].status, body: { Code: code, Message: message } };
}

export interface ProviderErrorEntry {
  /** Whether a later attempt can succeed without anyone changing anything. */
  readonly retryable: boolean;
  readonly summary: string;
}

/**
 * Why a profile has no credentials, as /health, `credport status` and a 503 body name it, when the
 * reason is credport's own rather than the upstream's.
 */
export const PROVIDER_ERRORS = {
  CredentialsUnavailable: { retryable: true, summary: 'No credentials yet: the first refresh has not finished.' },
  InvalidConfiguration: {
    retryable: false,
    summary: 'The profile cannot be built from the config (a missing variable, an impossible combination).',
  },
  RestartRequired: { retryable: false, summary: "The profile's cloud was not configured when the daemon started; restart it." },
  SourceProfileMissing: { retryable: false, summary: 'A chained profile names a source profile that is not configured.' },
  SourceCredentialsUnavailable: { retryable: true, summary: 'The source profile of a chained profile has no credentials.' },
  KeyUnavailable: { retryable: true, summary: 'The key backend could not sign (token removed, PIN, module error).' },
  KeyCertificateMismatch: { retryable: true, summary: 'The certificate is not for the key that signs.' },
  UpstreamTimeout: { retryable: true, summary: 'The upstream did not answer within its deadline; the call was abandoned.' },
  UpstreamUnreachable: { retryable: true, summary: 'The upstream could not be reached (DNS, connection refused, TLS).' },
  ResponseTooLarge: { retryable: true, summary: 'The upstream answer exceeded the size cap and was cut off.' },
  MalformedResponse: { retryable: true, summary: 'The upstream answered something that is not complete credentials.' },
  ImplausibleClockSkew: {
    retryable: true,
    summary: "The upstream's Date header is more than a day from this clock; the answer is not believed.",
  },
  ImplausibleExpiration: { retryable: true, summary: 'The upstream gave credentials expiring implausibly far ahead (over 36 h).' },
  ExpiredCredentials: { retryable: true, summary: 'The upstream gave credentials already within the expiry margin.' },
  Aborted: { retryable: true, summary: 'The refresh was cancelled (shutdown, reload, deadline).' },
  FederatedTokenFile: {
    retryable: true,
    summary: "An Azure profile's federated token file could not be written (a file not credport's, a full disk).",
  },
  InternalError: { retryable: true, summary: 'An unexpected error during a refresh; the daemon log has the details.' },
} as const satisfies Record<string, ProviderErrorEntry>;

export type ProviderErrorCode = keyof typeof PROVIDER_ERRORS;
