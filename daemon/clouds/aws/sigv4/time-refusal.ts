/**
 * The codes SigV4 services use when they refuse a request for its timestamp (the signer's clock is off).
 * Each service also words it in a message of its own (STS: SignatureDoesNotMatch "Signature expired";
 * Roles Anywhere: AccessDeniedException), which its errors module reads beside these.
 */
export const SIGV4_TIME_CODES: ReadonlySet<string> = new Set(['RequestTimeTooSkewed', 'RequestExpired', 'RequestInTheFuture']);
