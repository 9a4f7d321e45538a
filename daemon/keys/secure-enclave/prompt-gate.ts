/**
 * Signatures with a user-presence key, one at a time, and none at all for a while after the user could
 * not or would not answer. A refresher retrying such a key from a LaunchDaemon, over ssh or behind a
 * locked screen would otherwise line up one prompt per attempt (and per profile), each failing or
 * waiting for a person who is not there; after a cancel it would ask again at once. So after
 * INTERACTION_NOT_ALLOWED or USER_CANCELLED the gate refuses without asking the Secure Enclave, for a
 * window that doubles with each such failure (30 s up to 15 min) and ends with the first success.
 */
import { KeyBackendError, isKeyBackendError } from '../errors.js';

const FIRST_MS = 30_000;
const MAX_MS = 15 * 60_000;

export class PromptGate {
  #tail: Promise<unknown> = Promise.resolve();
  #closedUntil = 0;
  #windowMs = 0;
  #last: KeyBackendError | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Runs `ask` after the ones before it, or refuses while the gate is closed. */
  run<T>(ask: () => Promise<T>): Promise<T> {
    const turn = this.#tail.then(
      () => this.#attempt(ask),
      () => this.#attempt(ask),
    );
    this.#tail = turn.catch(() => undefined);
    return turn;
  }

  async #attempt<T>(ask: () => Promise<T>): Promise<T> {
    const now = this.now();
    if (now < this.#closedUntil && this.#last) {
      const waitS = Math.ceil((this.#closedUntil - now) / 1000);
      throw new KeyBackendError(this.#last.code, `${this.#last.message} (not asking again for ${waitS} s)`, {
        cause: this.#last,
        ...(this.#last.osStatus !== undefined ? { osStatus: this.#last.osStatus } : {}),
      });
    }
    try {
      const v = await ask();
      this.#windowMs = 0;
      this.#closedUntil = 0;
      this.#last = undefined;
      return v;
    } catch (err) {
      if (isKeyBackendError(err, 'INTERACTION_NOT_ALLOWED', 'USER_CANCELLED')) {
        this.#windowMs = Math.min(MAX_MS, this.#windowMs === 0 ? FIRST_MS : this.#windowMs * 2);
        this.#closedUntil = this.now() + this.#windowMs;
        this.#last = err;
      }
      throw err;
    }
  }
}
