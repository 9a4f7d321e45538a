/**
 * Prometheus metrics, one registry per daemon so that several
 * daemons in one process (tests) never mix their counts. Labels carry profile
 * names, routes and error codes: never anything secret.
 */
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from './prometheus.js';
import { KEY_BACKEND_ERROR_CODES } from '../keys/errors.js';
import type { KeySigner } from '../keys/signer.js';
import type { ManagedProvider } from '../providers/types.js';
import type { ProfileRefresher } from '../refresh/profile-refresher.js';
import { registerProcessMetrics } from './process-metrics.js';

/**
 * The codes a refresh failure is counted under. Upstream codes are the upstream's to choose: a label
 * per distinct code would let it create a series per failure, so anything not listed counts as
 * "other" (the code itself is in the log and /health).
 */
const REFRESH_FAILURE_CODES: ReadonlySet<string> = new Set([
  // credport's own
  'Aborted',
  'InternalError',
  'InvalidConfiguration',
  'KeyCertificateMismatch',
  'KeyUnavailable',
  'MalformedResponse',
  'ResponseTooLarge',
  'SourceCredentialsUnavailable',
  'SourceProfileMissing',
  'UpstreamTimeout',
  'UpstreamUnreachable',
  'UpstreamError',
  'ExpiredCredentials',
  'ImplausibleExpiration',
  'ImplausibleClockSkew',
  'SigningFailed',
  'CredentialsUnavailable',
  'UnknownError',
  // STS
  'AccessDenied',
  'ExpiredToken',
  'ExpiredTokenException',
  'IDPCommunicationError',
  'IDPRejectedClaim',
  'InvalidIdentityToken',
  'InvalidClientTokenId',
  'MalformedPolicyDocument',
  'PackedPolicyTooLarge',
  'RegionDisabledException',
  'SignatureDoesNotMatch',
  'ValidationError',
  'Throttling',
  'InternalFailure',
  'ServiceUnavailable',
  'RequestLimitExceeded',
  // Roles Anywhere
  'AccessDeniedException',
  'ResourceNotFoundException',
  'ValidationException',
  'ThrottlingException',
  'TooManyRequestsException',
  'InternalServerException',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'RequestTimeTooSkewed',
  // certificates and key backends
  'CertificateUnavailable',
  ...KEY_BACKEND_ERROR_CODES,
]);

/** A refresh-failure code as a metrics label: one of a fixed set, else "other". */
export function refreshFailureLabel(code: string | undefined): string {
  if (code === undefined) return 'unknown';
  return REFRESH_FAILURE_CODES.has(code) ? code : 'other';
}

/** Increments of one label set, counted locally and added to the counter at each scrape. */
class PendingCount<L extends string> {
  #n = 0;
  constructor(readonly labels: Record<L, string>) {}
  inc(): void {
    this.#n++;
  }
  flushTo(counter: Counter<L>): void {
    if (this.#n === 0) return;
    counter.inc(this.labels, this.#n);
    this.#n = 0;
  }
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'endpoint' | 'status'>;
  readonly #refreshes: Counter<'profile' | 'result' | 'code'>;
  readonly #signing: Histogram<'backend'>;
  readonly #handouts: Counter<'profile' | 'executable'>;
  readonly #refusals: Counter<'reason'>;
  readonly #peerLookups: Counter<'result'>;
  /** Executable labels seen so far; past the cap, new ones count as "other" so a series cannot grow without end. */
  readonly #executables = new Set<string>();
  #profiles: ReadonlyMap<string, ProfileRefresher> = new Map();

  constructor() {
    // Not prom-client's collectDefaultMetrics: its event-loop monitor wakes the daemon every 10 ms.
    registerProcessMetrics(this.registry, 'credport_');
    const requestChildren = this.#requestChildren;
    this.#requests = new Counter({
      name: 'credport_http_requests_total',
      help: 'HTTP requests by endpoint and status',
      labelNames: ['endpoint', 'status'],
      registers: [this.registry],
      collect() {
        for (const c of requestChildren.values()) c.flushTo(this);
      },
    });
    this.#refreshes = new Counter({
      name: 'credport_credential_refreshes_total',
      help: 'Upstream credential fetches by profile and result (code: the upstream error code on failure)',
      labelNames: ['profile', 'result', 'code'],
      registers: [this.registry],
    });
    this.#signing = new Histogram({
      name: 'credport_signing_duration_seconds',
      help: 'Time to sign with the device key',
      labelNames: ['backend'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    const handoutChildren = this.#handoutChildren;
    const handoutOverflow = this.#handoutOverflow;
    this.#handouts = new Counter({
      name: 'credport_credential_handouts_total',
      help: 'Credentials handed to local processes, by profile and executable basename (at most 32 names, then "other")',
      labelNames: ['profile', 'executable'],
      registers: [this.registry],
      collect() {
        for (const c of handoutChildren.values()) c.flushTo(this);
        for (const c of handoutOverflow.values()) c.flushTo(this);
      },
    });
    this.#refusals = new Counter({
      name: 'credport_peer_refusals_total',
      help: 'Requests refused by the peer check: unidentified peer, uid not allowed, executable not allowed',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.#peerLookups = new Counter({
      name: 'credport_peer_lookups_total',
      help: 'Peer identifications, one per connection that needed one',
      labelNames: ['result'],
      registers: [this.registry],
    });
    const profiles = () => this.#profiles;
    new Gauge({
      name: 'credport_credential_seconds_to_expiry',
      help: 'Seconds until the held credentials of each profile expire (absent: none held)',
      labelNames: ['profile'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [name, r] of profiles()) {
          const s = r.status().secondsRemaining;
          if (s !== null) this.set({ profile: name }, s);
        }
      },
    });
    new Gauge({
      name: 'credport_profile_healthy',
      help: '1 when the profile holds valid credentials, else 0',
      labelNames: ['profile'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [name, r] of profiles()) this.set({ profile: name }, r.hasValidCredentials() ? 1 : 0);
      },
    });
  }

  watchProfiles(p: ReadonlyMap<string, ProfileRefresher>): void {
    this.#profiles = p;
  }

  #certificates: () => Iterable<{ name: string; provider: ManagedProvider }> = () => [];

  /** Certificates (Roles Anywhere) and their renewal, read at each scrape. */
  watchCertificates(source: () => Iterable<{ name: string; provider: ManagedProvider }>): void {
    if (this.#certificatesWatched) {
      this.#certificates = source;
      return;
    }
    this.#certificatesWatched = true;
    this.#certificates = source;
    const each = (fn: (name: string, p: ManagedProvider) => void) => {
      for (const { name, provider } of this.#certificates()) {
        try {
          fn(name, provider);
        } catch {
          // An unreadable certificate is the refresh's error to report, not the scrape's.
        }
      }
    };
    new Gauge({
      name: 'credport_certificate_seconds_to_expiry',
      help: 'Seconds until the certificate of each Roles Anywhere profile expires',
      labelNames: ['profile'],
      registers: [this.registry],
      collect() {
        this.reset();
        each((name, p) => {
          const c = p.certificateInfo?.();
          if (c) this.set({ profile: name }, Math.floor((c.notAfter.getTime() - Date.now()) / 1000));
        });
      },
    });
    new Gauge({
      name: 'credport_certificate_renewal_failures',
      help: 'Consecutive failed certificate renewals of each profile with [profiles.X.renewal] (0: the last one worked)',
      labelNames: ['profile', 'method'],
      registers: [this.registry],
      collect() {
        this.reset();
        each((name, p) => {
          const r = p.renewalStatus?.();
          if (r) this.set({ profile: name, method: r.method }, r.consecutiveFailures);
        });
      },
    });
    new Gauge({
      name: 'credport_certificate_renewal_next_attempt_timestamp_seconds',
      help: 'When the next certificate renewal attempt of each profile is due (Unix time)',
      labelNames: ['profile'],
      registers: [this.registry],
      collect() {
        this.reset();
        each((name, p) => {
          const next = p.renewalStatus?.()?.nextAttempt;
          if (next) this.set({ profile: name }, Math.floor(Date.parse(next) / 1000));
        });
      },
    });
  }

  #certificatesWatched = false;

  readonly #requestChildren = new Map<string, PendingCount<'endpoint' | 'status'>>();

  request(endpoint: string, status: number): void {
    this.requestCounter(endpoint, status).inc();
  }

  /**
   * The count of one (endpoint, status), to keep and increment: counted here and handed to the
   * counter when scraped, since a label lookup (or even building its key) per increment is a visible
   * share of a fast-path request.
   */
  requestCounter(endpoint: string, status: number): { inc(): void } {
    const key = `${endpoint}\u0000${status}`;
    let child = this.#requestChildren.get(key);
    if (child === undefined) {
      child = new PendingCount({ endpoint, status: String(status) });
      this.#requestChildren.set(key, child);
    }
    return child;
  }

  readonly #handoutChildren = new Map<string, PendingCount<'profile' | 'executable'>>();
  /** Past the cap of remembered keys, every new (profile, executable) shares one child per label set. */
  readonly #handoutOverflow = new Map<string, PendingCount<'profile' | 'executable'>>();

  handout(profile: string, exe: string | null): void {
    this.handoutCounter(profile, exe).inc();
  }

  /** The counter child of one (profile, executable), for callers that count many handouts. */
  handoutCounter(profile: string, exe: string | null): { inc(): void } {
    // As for requests: the label child is found by a string key, not by the counter's label lookup.
    const key = `${profile}\u0000${exe}`;
    let child = this.#handoutChildren.get(key);
    if (child === undefined) {
      let name = exe ? basename(exe).slice(0, 64) : 'unknown';
      if (!this.#executables.has(name)) {
        if (this.#executables.size >= 32) name = 'other';
        else this.#executables.add(name);
      }
      const labelKey = `${profile}\u0000${name}`;
      // Bounded like the labels: past the cap, children are found by their label set, not remembered per key.
      child = this.#handoutOverflow.get(labelKey) ?? new PendingCount({ profile, executable: name });
      if (this.#handoutChildren.size < 1024) this.#handoutChildren.set(key, child);
      else this.#handoutOverflow.set(labelKey, child);
    }
    return child;
  }

  refusal(reason: string): void {
    this.#refusals.inc({ reason });
  }

  peerLookup(ok: boolean): void {
    this.#peerLookups.inc({ result: ok ? 'identified' : 'unidentified' });
  }

  refreshAttempt(profile: string, ok: boolean, code?: string): void {
    this.#refreshes.inc({ profile, result: ok ? 'success' : 'failure', code: ok ? '' : refreshFailureLabel(code) });
  }

  /** Wraps a signer so that every signature is timed; the signer's own behaviour is unchanged. */
  instrumentSigner(signer: KeySigner): KeySigner {
    const histogram = this.#signing;
    const backend = signer.describe().backend;
    return {
      algorithm: signer.algorithm,
      thumbprint: signer.thumbprint,
      publicJwk: () => signer.publicJwk(),
      describe: () => signer.describe(),
      close: () => signer.close(),
      ...(signer.readCertificates ? { readCertificates: () => signer.readCertificates!() } : {}),
      ...(signer.storeCertificate ? { storeCertificate: (der: Uint8Array) => signer.storeCertificate!(der) } : {}),
      async sign(data) {
        const start = performance.now();
        try {
          return await signer.sign(data);
        } finally {
          histogram.observe({ backend }, (performance.now() - start) / 1000);
        }
      },
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
