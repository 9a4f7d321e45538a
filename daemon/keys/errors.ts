/**
 * The typed error of the hardware key backends. The native addon rejects with
 * plain Errors carrying a `code` (and `ckr` / `osStatus`); everything that
 * crosses into the daemon is turned into a KeyBackendError here, so callers
 * switch on `code` and never parse messages.
 */

/** Keep in step with ErrorCode in enclave-addon/src/errors.h (a test compares them). */
export const KEY_BACKEND_ERROR_CODES = [
  'KEY_NOT_FOUND',
  'TOKEN_NOT_PRESENT',
  'PIN_INCORRECT',
  'PIN_LOCKED',
  'USER_CANCELLED',
  'MODULE_LOAD_FAILED',
  'UNSUPPORTED_CURVE',
  'SESSION_INVALID',
  'KEY_EXISTS',
  'CERTIFICATE_NOT_FOUND',
  'INVALID_ARGUMENT',
  'BACKEND_ERROR',
  'INTERACTION_NOT_ALLOWED',
] as const;

export type KeyBackendErrorCode = (typeof KEY_BACKEND_ERROR_CODES)[number];

export interface KeyBackendErrorDetails {
  /** The PKCS#11 return value (CK_RV) behind the error, when there is one. */
  ckr?: number;
  /** The macOS OSStatus / LocalAuthentication code behind the error, when there is one. */
  osStatus?: number;
  cause?: unknown;
}

export class KeyBackendError extends Error {
  override readonly name = 'KeyBackendError';
  readonly ckr: number | undefined;
  readonly osStatus: number | undefined;

  constructor(
    readonly code: KeyBackendErrorCode,
    message: string,
    details: KeyBackendErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.ckr = details.ckr;
    this.osStatus = details.osStatus;
  }

  /**
   * Converts whatever a native call threw. An Error with a known `code` keeps
   * it; anything else is a BACKEND_ERROR. `context` prefixes the message
   * ("opening the PKCS#11 key: ...") when the native message lacks it.
   */
  static from(err: unknown, context?: string): KeyBackendError {
    if (err instanceof KeyBackendError) return err;
    const prefix = context ? `${context}: ` : '';
    if (err instanceof Error) {
      const fields = err as Error & { code?: unknown; ckr?: unknown; osStatus?: unknown };
      const code = isKeyBackendErrorCode(fields.code) ? fields.code : 'BACKEND_ERROR';
      return new KeyBackendError(code, `${prefix}${err.message}`, {
        ckr: typeof fields.ckr === 'number' ? fields.ckr : undefined,
        osStatus: typeof fields.osStatus === 'number' ? fields.osStatus : undefined,
        cause: err,
      });
    }
    return new KeyBackendError('BACKEND_ERROR', `${prefix}${String(err)}`);
  }
}

export function isKeyBackendErrorCode(value: unknown): value is KeyBackendErrorCode {
  return typeof value === 'string' && (KEY_BACKEND_ERROR_CODES as readonly string[]).includes(value);
}

/** True when `err` is a KeyBackendError, with one of `codes` if any are given. */
export function isKeyBackendError(err: unknown, ...codes: KeyBackendErrorCode[]): err is KeyBackendError {
  return err instanceof KeyBackendError && (codes.length === 0 || codes.includes(err.code));
}
