/**
 * IMDSv2 session tokens. Kept by the SHA-256 of the token so that a lookup
 * reveals nothing through timing, bounded in number so that a flood of PUTs
 * costs memory once, not without end.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Lru } from '../../../util/lru.js';

export const MIN_TTL_SECONDS = 1;
export const MAX_TTL_SECONDS = 21600;

const digest = (t: string): string => createHash('sha256').update(t, 'utf8').digest('base64');

export class ImdsTokenStore {
  readonly #cache: Lru<string, number>;

  constructor(
    private readonly now: () => number = Date.now,
    max = 10_000,
  ) {
    this.#cache = new Lru<string, number>(max);
  }

  issue(ttlSeconds: number): string {
    const token = randomBytes(40).toString('base64');
    this.#cache.set(digest(token), this.now() + ttlSeconds * 1000);
    return token;
  }

  isValid(token: string | undefined): boolean {
    if (!token || token.length > 256) return false;
    return this.#validKey(digest(token));
  }

  /**
   * isValid for a token presented on a connection: a kept-alive SDK sends the same token on every
   * request, and the digest of the token this connection last had accepted is reused when it presents
   * exactly that token again. Only the hash is saved: the token must still be in the store and
   * unexpired, so one pushed out by a flood of PUTs or expired is refused here too. The equality
   * test compares the presented token with what the same connection sent before, which tells its
   * client nothing it does not already hold.
   */
  isValidOn(socket: Socket, token: string | undefined): boolean {
    if (!token || token.length > 256) return false;
    const seen = this.#accepted.get(socket);
    if (seen !== undefined && seen.token === token) return this.#validKey(seen.key);
    const key = digest(token);
    if (!this.#validKey(key)) return false;
    this.#accepted.set(socket, { token, key });
    return true;
  }

  /** The token each connection last had accepted, with its digest. */
  readonly #accepted = new WeakMap<Socket, { token: string; key: string }>();

  #validKey(key: string): boolean {
    const expiresAt = this.#cache.get(key);
    if (expiresAt === undefined) return false;
    if (this.now() >= expiresAt) {
      this.#cache.delete(key);
      return false;
    }
    return true;
  }

  get size(): number {
    return this.#cache.size;
  }
}

/** Parses the TTL header: whole seconds in [1, 21600], anything else is undefined. */
export function parseTtl(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,6}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= MIN_TTL_SECONDS && n <= MAX_TTL_SECONDS ? n : undefined;
}
