/**
 * One profile's certificate renewal: wait until `at` of the certificate's lifetime, have a CSR signed
 * by the key inside its backend, ask the configured issuer, check what comes back, install it, and
 * start over from the new certificate. A failure keeps the old certificate and tries again after a
 * backoff that never outlasts the certificate; the state is kept for /health, status, doctor and
 * /metrics. Timers come from the injected Clock, so tests move time instead of sleeping.
 */
import type { Clock, TimerHandle } from '../../../../refresh/clock.js';
import { sanitizeCode, sanitizeMessage } from '../../../../providers/upstream/error-text.js';
import { createCsr } from '../../../../x509/csr.js';
import type { X509SigningKey } from '../../../../x509/signing-key.js';
import type { CertificateChain } from '../certificates.js';
import { checkRenewedChain, type RenewedChain } from './check-renewed.js';
import type { CertificateIssuer } from './issuer.js';
import { RenewalError } from './renewal-error.js';
import { DEFAULT_RENEWAL_AT, RETRY_BASE_MS, renewalDueAt, retryDelayMs } from './schedule.js';

export interface RenewalStatus {
  method: string;
  /** waiting: until nextAttempt; renewing: an attempt is running; retrying: waiting after a failure. */
  state: 'waiting' | 'renewing' | 'retrying' | 'stopped';
  nextAttempt: string | null;
  lastAttempt: string | null;
  lastRenewed: string | null;
  lastError: { code: string; message: string; at: string } | null;
  consecutiveFailures: number;
}

export interface RenewOutcome {
  renewed: boolean;
  /** Not renewed: why (not due yet). Renewed: the new certificate's serial (decimal) and expiry. */
  reason?: string;
  serial?: string;
  notAfter?: Date;
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RenewerOptions {
  profile: string;
  issuer: CertificateIssuer;
  /** Fraction of the lifetime; default 2/3. */
  at?: number;
  /** Lifetime to ask for; default the current certificate's. */
  validityMs?: number;
  clock: Clock;
  /** The certificate in use now (re-read). */
  current: () => Promise<CertificateChain>;
  /** The key the CSR is signed with: the one the certificate certifies. */
  key: X509SigningKey;
  /** The trust anchor's CA certificates, read at each attempt. */
  anchors: () => Uint8Array[];
  install: (renewed: RenewedChain) => Promise<void>;
  logger?: Log;
  random?: () => number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class CertificateRenewer {
  readonly #o: RenewerOptions;
  #timer: TimerHandle | undefined;
  #stopped = true;
  #inFlight: Promise<RenewOutcome> | undefined;
  #nextAt: number | null = null;
  #lastAttempt: number | null = null;
  #lastRenewed: number | null = null;
  #lastError: RenewalStatus['lastError'] = null;
  #failures = 0;

  constructor(opts: RenewerOptions) {
    this.#o = opts;
  }

  get method(): string {
    return this.#o.issuer.method;
  }

  /** Starts the schedule from the certificate in use. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    void this.#planFromCurrent();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#nextAt = null;
  }

  /** Resolves when no attempt is running (tests, `cert renew`). */
  async idle(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight.catch(() => undefined);
  }

  status(): RenewalStatus {
    return {
      method: this.#o.issuer.method,
      state: this.#stopped ? 'stopped' : this.#inFlight ? 'renewing' : this.#failures > 0 ? 'retrying' : 'waiting',
      nextAttempt: iso(this.#nextAt),
      lastAttempt: iso(this.#lastAttempt),
      lastRenewed: iso(this.#lastRenewed),
      lastError: this.#lastError,
      consecutiveFailures: this.#failures,
    };
  }

  #schedule(at: number): void {
    this.#timer?.cancel();
    if (this.#stopped) return;
    this.#nextAt = at;
    this.#timer = this.#o.clock.setTimer(() => {
      this.#timer = undefined;
      void this.renew({ force: false }).catch(() => undefined);
    }, at - this.#o.clock.now());
  }

  async #planFromCurrent(): Promise<void> {
    try {
      const chain = await this.#o.current();
      this.#schedule(renewalDueAt(chain.leaf.notBefore, chain.leaf.notAfter, this.#o.at ?? DEFAULT_RENEWAL_AT));
    } catch {
      // The certificate cannot be read now (token out, file missing): the refresh shows why; look again later.
      this.#schedule(this.#o.clock.now() + RETRY_BASE_MS);
    }
  }

  /** One attempt (single flight). `force`: renew even before `at` of the lifetime. A failure rejects with a RenewalError and is kept for status(). */
  renew(opts: { force: boolean }): Promise<RenewOutcome> {
    if (this.#inFlight) return this.#inFlight;
    const p = this.#attempt(opts.force).finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = p;
    return p;
  }

  async #attempt(force: boolean): Promise<RenewOutcome> {
    const o = this.#o;
    const now = o.clock.now();
    let current: CertificateChain | undefined;
    try {
      current = await o.current();
      const due = renewalDueAt(current.leaf.notBefore, current.leaf.notAfter, o.at ?? DEFAULT_RENEWAL_AT);
      if (!force && now < due) {
        this.#schedule(due);
        return { renewed: false, reason: `not due until ${new Date(due).toISOString()}` };
      }
      this.#lastAttempt = now;
      const renewed = await this.#renewFrom(current, now);
      await o.install(renewed);
      const after = await o.current();
      if (!Buffer.from(after.leaf.der).equals(Buffer.from(renewed.leaf))) {
        throw new RenewalError('RenewedCertificateNotInUse', 'the renewed certificate was written but the profile still reads the old one');
      }
      this.#failures = 0;
      this.#lastError = null;
      this.#lastRenewed = o.clock.now();
      o.logger?.info(
        { profile: o.profile, method: o.issuer.method, serial: after.leaf.serialDecimal, notAfter: after.leaf.notAfter.toISOString() },
        'certificate renewed',
      );
      this.#schedule(renewalDueAt(after.leaf.notBefore, after.leaf.notAfter, o.at ?? DEFAULT_RENEWAL_AT));
      return { renewed: true, serial: after.leaf.serialDecimal, notAfter: after.leaf.notAfter };
    } catch (err) {
      this.#failures++;
      const code = sanitizeCode(err instanceof RenewalError ? err.code : ((err as { code?: string }).code ?? 'RenewalFailed'));
      const message = sanitizeMessage((err as Error).message);
      this.#lastError = { code, message, at: new Date(o.clock.now()).toISOString() };
      const msLeft = current ? current.leaf.notAfter.getTime() - o.clock.now() : 0;
      const delay = retryDelayMs(this.#failures, msLeft, o.random);
      o.logger?.warn(
        { profile: o.profile, method: o.issuer.method, code, err: message, failures: this.#failures, retryInMs: delay },
        'certificate renewal failed; the current certificate stays in use',
      );
      this.#schedule(o.clock.now() + delay);
      throw new RenewalError(code, message);
    }
  }

  async #renewFrom(current: CertificateChain, now: number): Promise<RenewedChain> {
    const o = this.#o;
    const spki = o.key.publicKeySpki?.();
    if (spki === undefined)
      throw new RenewalError('RenewalMisconfigured', `${o.key.describe()} does not expose its public key; a CSR needs it`);
    let csrPem: string;
    try {
      csrPem = (await createCsr(o.key, { subject: current.leaf.subject })).pem;
    } catch (err) {
      throw new RenewalError(
        (err as { code?: string }).code ?? 'CsrFailed',
        `signing the CSR with ${o.key.describe()}: ${(err as Error).message}`,
      );
    }
    const lifetime = current.leaf.notAfter.getTime() - current.leaf.notBefore.getTime();
    const pem = await o.issuer.issue({ csrPem, now, validityMs: o.validityMs ?? Math.max(60_000, lifetime) });
    return checkRenewedChain(pem, { spki, anchors: o.anchors(), now: o.clock.now(), from: o.issuer.source });
  }
}
