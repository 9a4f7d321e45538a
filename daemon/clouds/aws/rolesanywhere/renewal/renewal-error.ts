/** Why a renewal attempt failed; the code reaches /health, the message says what to fix. */
export class RenewalError extends Error {
  override readonly name = 'RenewalError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
