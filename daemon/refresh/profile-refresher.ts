/**
 * One profile's credentials over time: fetched at start, refreshed ahead of
 * expiry, retried with backoff, handed to requests under three rules:
 *   - one upstream call at a time, however many requests arrive (single flight);
 *   - last good credentials are served while still valid when a refresh fails;
 *   - credentials within the expiry margin are never served.
 */
import type { Logger } from '../logging/logger.js';
import { ProviderError, type AwsCredentials, type CredentialProvider } from '../providers/types.js';
import type { Clock, TimerHandle } from './clock.js';
import { demandThresholdMs, retryDelayMs, scheduledRefreshAt, type RefreshPolicy } from './policy.js';

/** No valid credentials to hand out; carries the upstream's last error. */
export class NoCredentialsError extends Error {
  override readonly name = 'NoCredentialsError';
  constructor(readonly profile: string, readonly code: string, message: string) {
    super(message);
  }
}

interface Held {
  credentials: AwsCredentials;
  fetchedAt: number;
  expiresAt: number;
}

export interface RefreshError {
  code: string;
  message: string;
  at: string;
}

export type ProfileState = 'starting' | 'ok' | 'failing' | 'unavailable';

export interface ProfileStatus {
  state: ProfileState;
  refresh: 'scheduled' | 'on-demand';
  expiration: string | null;
  secondsRemaining: number | null;
  lastRefresh: string | null;
  nextRefresh: string | null;
  consecutiveFailures: number;
  lastError: RefreshError | null;
  refreshing: boolean;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export interface ProfileRefresherOptions {
  name: string;
  provider: CredentialProvider;
  policy: RefreshPolicy;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /** Observers (metrics, tests). Called after every upstream attempt. */
  onAttempt?: (profile: string, ok: boolean, error?: ProviderError) => void;
}

export class ProfileRefresher {
  readonly name: string;
  readonly #provider: CredentialProvider;
  readonly #policy: RefreshPolicy;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #onAttempt: ProfileRefresherOptions['onAttempt'];

  #held: Held | undefined;
  #inflight: Promise<Held> | undefined;
  #abort: AbortController | undefined;
  #timer: TimerHandle | undefined;
  #nextAt: number | undefined;
  #failures = 0;
  #lastError: RefreshError | undefined;
  #lastSuccessAt: number | undefined;
  #lastAttemptAt: number | undefined;
  #stopped = false;

  constructor(o: ProfileRefresherOptions) {
    this.name = o.name;
    this.#provider = o.provider;
    this.#policy = o.policy;
    this.#clock = o.clock;
    this.#log = o.logger.child({ profile: o.name });
    this.#random = o.random ?? Math.random;
    this.#onAttempt = o.onAttempt;
  }

  get unattended(): boolean {
    return this.#provider.unattended;
  }

  /** Fetches now (unattended profiles) and keeps refreshing on schedule. */
  start(): void {
    this.#stopped = false;
    if (this.unattended) void this.#refresh('start').catch(() => undefined);
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#abort?.abort();
  }

  /**
   * Called periodically by the scheduler with the wall clock: a laptop that
   * slept through its timer refreshes on wake rather than at the next request.
   */
  tick(): void {
    if (this.#stopped || this.#inflight || !this.unattended) return;
    if (this.#nextAt !== undefined && this.#clock.now() >= this.#nextAt) void this.#refresh('overdue').catch(() => undefined);
  }

  #valid(h: Held | undefined, now: number): h is Held {
    return h !== undefined && h.expiresAt - now > this.#policy.expiryMarginMs;
  }

  #inBackoff(now: number): boolean {
    return this.#failures > 0 && this.#nextAt !== undefined && now < this.#nextAt;
  }

  /** Credentials for a request, under the rules at the top of this file. */
  async get(): Promise<AwsCredentials> {
    const now = this.#clock.now();
    const held = this.#held;
    if (this.#valid(held, now)) {
      const remaining = held.expiresAt - now;
      if (remaining >= demandThresholdMs(this.#policy, held.fetchedAt, held.expiresAt)) return held.credentials;
      if (!this.#inflight && this.#inBackoff(now)) return held.credentials;
      try {
        return (await this.#refresh('demand')).credentials;
      } catch {
        const again = this.#held;
        if (this.#valid(again, this.#clock.now())) return again.credentials;
        throw this.#unavailable();
      }
    }
    // Nothing to serve: a request may try the upstream itself, at most once per
    // retry_base, so clients recover as soon as it is back rather than at the next
    // scheduled retry, and an outage still costs at most one call per interval.
    if (!this.#inflight && this.#inBackoff(now) && now - (this.#lastAttemptAt ?? 0) < this.#policy.retryBaseMs) throw this.#unavailable();
    try {
      return (await this.#refresh('demand')).credentials;
    } catch {
      // The wall clock may have stepped back while we waited: what is held may be valid again.
      const again = this.#held;
      if (this.#valid(again, this.#clock.now())) return again.credentials;
      throw this.#unavailable();
    }
  }

  /**
   * Credentials that get() would return at once, without waiting or refreshing;
   * undefined when get() would have work to do. For the server's fast path.
   */
  peek(): AwsCredentials | undefined {
    const now = this.#clock.now();
    const held = this.#held;
    if (this.#valid(held, now) && held.expiresAt - now >= demandThresholdMs(this.#policy, held.fetchedAt, held.expiresAt)) return held.credentials;
    return undefined;
  }

  /** Forces a refresh (joins one already running). */
  refreshNow(): Promise<AwsCredentials> {
    return this.#refresh('manual').then((h) => h.credentials);
  }

  #unavailable(): NoCredentialsError {
    const e = this.#lastError;
    if (!e) return new NoCredentialsError(this.name, 'CredentialsUnavailable', `profile ${this.name}: no credentials yet`);
    return new NoCredentialsError(this.name, e.code, `profile ${this.name}: ${e.message}`);
  }

  #refresh(reason: string): Promise<Held> {
    if (this.#inflight) return this.#inflight;
    const abort = new AbortController();
    this.#abort = abort;
    const started = this.#clock.now();
    this.#lastAttemptAt = started;
    this.#log.debug({ reason }, 'refreshing credentials');
    const run = (async (): Promise<Held> => {
      try {
        const credentials = await this.#provider.fetch(abort.signal);
        const fetchedAt = this.#clock.now();
        const expiresAt = credentials.expiration.getTime();
        if (expiresAt - fetchedAt <= this.#policy.expiryMarginMs) {
          throw new ProviderError(
            'ExpiredCredentials',
            `upstream returned credentials expiring at ${credentials.expiration.toISOString()}, already within the expiry margin`,
            true,
          );
        }
        const held: Held = { credentials, fetchedAt, expiresAt };
        this.#succeeded(held, Math.max(0, fetchedAt - started));
        return held;
      } catch (err) {
        const pe = err instanceof ProviderError ? err : new ProviderError('InternalError', (err as Error).message ?? String(err), true);
        this.#failed(pe);
        throw pe;
      }
    })();
    this.#inflight = run;
    // Clear the slot whichever way it ends; the caller sees the original outcome.
    run.then(
      () => this.#settle(run),
      () => this.#settle(run),
    );
    return run;
  }

  #settle(run: Promise<Held>): void {
    if (this.#inflight === run) {
      this.#inflight = undefined;
      this.#abort = undefined;
    }
  }

  #succeeded(held: Held, tookMs: number): void {
    this.#held = held;
    this.#failures = 0;
    this.#lastError = undefined;
    this.#lastSuccessAt = held.fetchedAt;
    this.#onAttempt?.(this.name, true);
    const next = scheduledRefreshAt(this.#policy, held.fetchedAt, held.expiresAt, this.#random);
    this.#schedule(next);
    this.#log.info(
      { expiration: held.credentials.expiration.toISOString(), nextRefresh: iso(next), tookMs },
      'credentials refreshed',
    );
  }

  #failed(err: ProviderError): void {
    this.#failures += 1;
    const now = this.#clock.now();
    this.#lastError = { code: err.code, message: err.message, at: iso(now) };
    this.#onAttempt?.(this.name, false, err);
    let next = now + retryDelayMs(this.#policy, this.#failures, this.#random);
    // Retry at least once more before the last good credentials stop being served.
    const held = this.#held;
    if (held && held.expiresAt - this.#policy.expiryMarginMs > now) next = Math.min(next, Math.max(now + 1000, held.expiresAt - this.#policy.expiryMarginMs - 1000));
    this.#schedule(next);
    const stillServing = this.#valid(this.#held, now);
    this.#log.warn(
      { code: err.code, err: err.message, failures: this.#failures, retryAt: iso(next), servingLastGood: stillServing },
      'credential refresh failed',
    );
  }

  #schedule(at: number): void {
    this.#nextAt = at;
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#stopped || !this.unattended) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      void this.#refresh('scheduled').catch(() => undefined);
    }, at - this.#clock.now());
  }

  status(): ProfileStatus {
    const now = this.#clock.now();
    const held = this.#held;
    const valid = this.#valid(held, now);
    let state: ProfileState;
    if (valid) state = this.#failures > 0 ? 'failing' : 'ok';
    else state = this.#lastError ? 'unavailable' : 'starting';
    return {
      state,
      refresh: this.unattended ? 'scheduled' : 'on-demand',
      expiration: held ? held.credentials.expiration.toISOString() : null,
      secondsRemaining: held ? Math.max(0, Math.floor((held.expiresAt - now) / 1000)) : null,
      lastRefresh: this.#lastSuccessAt !== undefined ? iso(this.#lastSuccessAt) : null,
      nextRefresh: this.#nextAt !== undefined && this.unattended ? iso(this.#nextAt) : null,
      consecutiveFailures: this.#failures,
      lastError: this.#lastError ?? null,
      refreshing: this.#inflight !== undefined,
    };
  }

  /** When the credentials now held were fetched (IMDS reports it as LastUpdated). */
  lastUpdated(): Date | undefined {
    return this.#held ? new Date(this.#held.fetchedAt) : undefined;
  }

  /** Whether a request now would be served credentials. */
  hasValidCredentials(): boolean {
    return this.#valid(this.#held, this.#clock.now());
  }
}
