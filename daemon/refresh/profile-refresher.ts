/**
 * One profile's credentials over time: fetched at start, refreshed ahead of
 * expiry, retried with backoff, handed to requests under these rules:
 *   - one upstream call at a time, however many requests arrive (single flight);
 *   - last good credentials are served while still valid when a refresh fails;
 *   - credentials within the expiry margin are never served;
 *   - a request never waits on a refresh longer than a client would (requestWaitMs):
 *     valid credentials are answered at once, except below the demand threshold,
 *     where a request waits that long at most for fresher ones (never on a refresh
 *     already older than that); a request with nothing valid to serve gets the
 *     last error after the wait;
 *   - an upstream call past its deadline (attemptDeadlineMs) is abandoned: it is
 *     cancelled, counted as a failure, and the next refresh starts afresh.
 */
import type { Logger } from '../logging/logger.js';
import { ProviderError, type CredentialProvider, type Credentials } from '../providers/types.js';
import type { Clock, TimerHandle } from './clock.js';
import { demandThresholdMs, retryDelayMs, scheduledRefreshAt, type RefreshPolicy } from './policy.js';

/** No valid credentials to hand out; carries the upstream's last error. */
export class NoCredentialsError extends Error {
  override readonly name = 'NoCredentialsError';
  constructor(
    readonly profile: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Credentials as held, with when they were fetched (a reload hands them to the next refresher). */
export interface HeldCredentials<C extends Credentials = Credentials> {
  credentials: C;
  fetchedAt: number;
  expiresAt: number;
}

/** What SDK clients wait for a credentials answer (the JS SDK's ECS timeout is 1 s). */
export const DEFAULT_REQUEST_WAIT_MS = 1000;
/**
 * Nothing from any upstream is believed to last longer than this (AWS's longest session is 12 h):
 * a last line behind each provider's own check, so no refresh is ever scheduled absurdly far.
 */
export const MAX_CREDENTIAL_LIFETIME_MS = 36 * 3_600_000;

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
const noop = (): void => undefined;

export interface ProfileRefresherOptions<C extends Credentials = Credentials> {
  name: string;
  provider: CredentialProvider<C>;
  policy: RefreshPolicy;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /** Observers (metrics, tests). Called after every upstream attempt. */
  onAttempt?: (profile: string, ok: boolean, error?: ProviderError) => void;
  /** Longest a request waits for a refresh (on the refresher's clock). Default 1 s. */
  requestWaitMs?: number;
  /** A fetch still running after this long is abandoned (on the refresher's clock). Default: none. */
  attemptDeadlineMs?: number;
  /** Credentials handed over by the refresher this one replaces (a reload); served while valid. */
  initial?: HeldCredentials<C>;
}

export class ProfileRefresher<C extends Credentials = Credentials> {
  readonly name: string;
  readonly #provider: CredentialProvider<C>;
  #policy: RefreshPolicy;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #onAttempt: ProfileRefresherOptions['onAttempt'];
  readonly #requestWaitMs: number;
  readonly #attemptDeadlineMs: number | undefined;

  #held: HeldCredentials<C> | undefined;
  #inflight: Promise<HeldCredentials<C>> | undefined;
  #abort: AbortController | undefined;
  #timer: TimerHandle | undefined;
  #nextAt: number | undefined;
  #failures = 0;
  #lastError: RefreshError | undefined;
  #lastSuccessAt: number | undefined;
  #lastAttemptAt: number | undefined;
  #stopped = false;

  constructor(o: ProfileRefresherOptions<C>) {
    this.name = o.name;
    this.#provider = o.provider;
    this.#policy = o.policy;
    this.#clock = o.clock;
    this.#log = o.logger.child({ profile: o.name });
    this.#random = o.random ?? Math.random;
    this.#onAttempt = o.onAttempt;
    this.#requestWaitMs = o.requestWaitMs ?? DEFAULT_REQUEST_WAIT_MS;
    this.#attemptDeadlineMs = o.attemptDeadlineMs;
    if (o.initial && this.#valid(o.initial, this.#clock.now())) {
      this.#held = o.initial;
      this.#lastSuccessAt = o.initial.fetchedAt;
    }
  }

  /** The credentials held now, if still valid: what a reload hands to the refresher replacing this one. */
  handover(): HeldCredentials<C> | undefined {
    return this.#valid(this.#held, this.#clock.now()) ? this.#held : undefined;
  }

  /**
   * New refresh tuning ([refresh] reloaded): what is held stays, and the next refresh is re-planned
   * under the new policy unless a retry is already scheduled.
   */
  setPolicy(policy: RefreshPolicy): void {
    this.#policy = policy;
    const held = this.#held;
    if (this.#stopped || this.#inflight || this.#failures > 0 || held === undefined) return;
    this.#schedule(scheduledRefreshAt(policy, held.fetchedAt, held.expiresAt, this.#random));
  }

  /** The audit log's public id of credentials this profile served. */
  credentialId(c: C): string {
    return this.#provider.credentialId?.(c) ?? 'unknown';
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

  #valid(h: HeldCredentials<C> | undefined, now: number): h is HeldCredentials<C> {
    return h !== undefined && h.expiresAt - now > this.#policy.expiryMarginMs;
  }

  #inBackoff(now: number): boolean {
    return this.#failures > 0 && this.#nextAt !== undefined && now < this.#nextAt;
  }

  /** Credentials for a request, under the rules at the top of this file. */
  async get(): Promise<C> {
    const now = this.#clock.now();
    const held = this.#held;
    if (this.#valid(held, now)) {
      const remaining = held.expiresAt - now;
      if (remaining >= demandThresholdMs(this.#policy, held.fetchedAt, held.expiresAt)) return held.credentials;
      // Below the threshold a request may wait (at most requestWaitMs) for fresher credentials, but
      // never on a refresh already running longer than that (it may be stuck until its deadline),
      // nor during a backoff: what is held is still valid.
      if (this.#inflight && now - (this.#lastAttemptAt ?? now) >= this.#requestWaitMs) return held.credentials;
      if (!this.#inflight && this.#inBackoff(now)) return held.credentials;
      try {
        return (await this.#waitBounded(this.#refresh('demand'))).credentials;
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
      return (await this.#waitBounded(this.#refresh('demand'))).credentials;
    } catch {
      // The wall clock may have stepped back while we waited: what is held may be valid again.
      const again = this.#held;
      if (this.#valid(again, this.#clock.now())) return again.credentials;
      throw this.#unavailable();
    }
  }

  /**
   * The refresh's outcome, or a rejection once requestWaitMs has passed: the client would have given
   * up by then. The refresh itself runs on (its result serves the next request).
   */
  #waitBounded(run: Promise<HeldCredentials<C>>): Promise<HeldCredentials<C>> {
    let timer: TimerHandle | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimer(() => reject(new Error('waited long enough')), this.#requestWaitMs);
    });
    return Promise.race([run, gaveUp]).finally(() => timer?.cancel());
  }

  /**
   * Credentials that get() would return at once, without waiting or refreshing;
   * undefined when get() would have work to do. For the server's fast path.
   */
  peek(): C | undefined {
    const now = this.#clock.now();
    const held = this.#held;
    if (this.#valid(held, now) && held.expiresAt - now >= demandThresholdMs(this.#policy, held.fetchedAt, held.expiresAt))
      return held.credentials;
    return undefined;
  }

  /** Resolves when no fetch is running (at once when none is); never rejects. */
  settled(): Promise<void> {
    return this.#inflight ? this.#inflight.then(noop, noop) : Promise.resolve();
  }

  /** Forces a refresh (joins one already running). */
  refreshNow(): Promise<C> {
    return this.#refresh('manual').then((h) => h.credentials);
  }

  #unavailable(): NoCredentialsError {
    const e = this.#lastError;
    if (!e) return new NoCredentialsError(this.name, 'CredentialsUnavailable', `profile ${this.name}: no credentials yet`);
    return new NoCredentialsError(this.name, e.code, `profile ${this.name}: ${e.message}`);
  }

  #refresh(reason: string): Promise<HeldCredentials<C>> {
    if (this.#inflight) return this.#inflight;
    const abort = new AbortController();
    this.#abort = abort;
    const started = this.#clock.now();
    this.#lastAttemptAt = started;
    this.#log.debug({ reason }, 'refreshing credentials');
    const run = (async (): Promise<HeldCredentials<C>> => {
      try {
        const credentials = await this.#withDeadline(this.#provider.fetch(abort.signal), abort);
        const fetchedAt = this.#clock.now();
        const expiresAt = credentials.expiration.getTime();
        if (!(expiresAt - fetchedAt <= MAX_CREDENTIAL_LIFETIME_MS)) {
          throw new ProviderError(
            'ImplausibleExpiration',
            `upstream returned credentials expiring at ${Number.isNaN(expiresAt) ? 'an unreadable time' : credentials.expiration.toISOString()}, more than ${MAX_CREDENTIAL_LIFETIME_MS / 3_600_000} h away; the answer is not believed`,
            true,
          );
        }
        if (expiresAt - fetchedAt <= this.#policy.expiryMarginMs) {
          throw new ProviderError(
            'ExpiredCredentials',
            `upstream returned credentials expiring at ${credentials.expiration.toISOString()}, already within the expiry margin`,
            true,
          );
        }
        const held: HeldCredentials<C> = { credentials, fetchedAt, expiresAt };
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

  /**
   * The provider's fetch, or UpstreamTimeout once attemptDeadlineMs has passed. Providers bound their
   * own calls; this is the backstop that keeps one that does not (a future provider, a hung key
   * backend) from holding the single flight, so requests never join a call past its deadline.
   */
  #withDeadline(fetching: Promise<C>, abort: AbortController): Promise<C> {
    const ms = this.#attemptDeadlineMs;
    if (ms === undefined) return fetching;
    let timer: TimerHandle | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimer(() => {
        abort.abort();
        reject(new ProviderError('UpstreamTimeout', `no answer within ${ms} ms; the call was abandoned`, true));
      }, ms);
    });
    // A fetch that fails after being abandoned has nobody to tell.
    fetching.catch(() => undefined);
    return Promise.race([fetching, late]).finally(() => timer?.cancel());
  }

  #settle(run: Promise<HeldCredentials<C>>): void {
    if (this.#inflight === run) {
      this.#inflight = undefined;
      this.#abort = undefined;
    }
  }

  #succeeded(held: HeldCredentials<C>, tookMs: number): void {
    this.#held = held;
    this.#failures = 0;
    this.#lastError = undefined;
    this.#lastSuccessAt = held.fetchedAt;
    this.#onAttempt?.(this.name, true);
    const next = scheduledRefreshAt(this.#policy, held.fetchedAt, held.expiresAt, this.#random);
    this.#schedule(next);
    this.#log.info({ expiration: held.credentials.expiration.toISOString(), nextRefresh: iso(next), tookMs }, 'credentials refreshed');
  }

  #failed(err: ProviderError): void {
    this.#failures += 1;
    const now = this.#clock.now();
    this.#lastError = { code: err.code, message: err.message, at: iso(now) };
    this.#onAttempt?.(this.name, false, err);
    let next = now + retryDelayMs(this.#policy, this.#failures, this.#random);
    // Retry at least once more before the last good credentials stop being served.
    const held = this.#held;
    if (held && held.expiresAt - this.#policy.expiryMarginMs > now)
      next = Math.min(next, Math.max(now + 1000, held.expiresAt - this.#policy.expiryMarginMs - 1000));
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
