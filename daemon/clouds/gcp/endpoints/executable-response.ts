/**
 * The response Google's executable-sourced external_account credentials expect
 * on stdout (google-auth-library's ExecutableResponse, Python's pluggable
 * source), for users who prefer `credential_source.executable` running
 * `credport auth`. The subject token goes in `id_token` (not `subject_token`)
 * and `expiration_time` is required for the library to cache the token.
 */
import { JWT_TOKEN_TYPE } from './external-account.js';

export interface ExecutableSuccess {
  version: 1;
  success: true;
  token_type: typeof JWT_TOKEN_TYPE;
  id_token: string;
  /** Epoch seconds. */
  expiration_time: number;
}

export interface ExecutableFailure {
  version: 1;
  success: false;
  code: string;
  message: string;
}

export function executableResponse(token: string, expiration: Date): ExecutableSuccess {
  return {
    version: 1,
    success: true,
    token_type: JWT_TOKEN_TYPE,
    id_token: token,
    expiration_time: Math.floor(expiration.getTime() / 1000),
  };
}

/** Both libraries require `code` and `message` on failure; they show them to the user. */
export function executableFailure(code: string, message: string): ExecutableFailure {
  return { version: 1, success: false, code, message };
}
