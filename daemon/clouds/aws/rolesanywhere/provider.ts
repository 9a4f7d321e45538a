/**
 * Provider `aws-rolesanywhere`: an X.509 certificate and its key turned into credentials by IAM Roles
 * Anywhere CreateSession, signed with SigV4-X509. One fetch() is one CreateSession with its own short
 * retries (throttling, 5xx, network) and one re-signature when the service says our clock is off; the
 * refresher's backoff handles everything longer.
 *
 * The clock offset learnt from the service's Date header is kept between calls, so a device whose
 * clock runs ten minutes off signs with the service's time from the second request on (and from the
 * first retry of the first).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isKeyBackendError } from '../../../keys/errors.js';
import { ClockSkew } from '../../../providers/clock-skew.js';
import { ProviderError, type CredentialProvider, type ProviderDescription } from '../../../providers/types.js';
import { awsCredentialId, type AwsCredentials } from '../credentials.js';
import { defaultEndpoint, isRoleArn, parseRolesAnywhereArn } from './arn.js';
import { CertificateError, CertificateSource, type CertificateChain, type CertificateProvider } from './certificates.js';
import { isClockSkewError, mapErrorResponse, mapTransportError } from './errors.js';
import { parseCreateSessionResponse } from './response.js';
import { amzDate, signRequest, type SignedRequest } from './sigv4-x509.js';
import { boundedFetch, DEFAULT_UPSTREAM_LIMITS, type UpstreamLimits } from '../../../providers/upstream/bounded-fetch.js';
import { checkExpiration } from '../../../providers/upstream/plausibility.js';
import type { X509SigningKey } from '../../../x509/signing-key.js';
import type { CertificateRenewer, RenewalStatus } from './renewal/renewer.js';

export interface AwsRolesAnywhereProviderOptions {
  key: X509SigningKey;
  /**
   * PEM file of the device certificate (and optionally its intermediates after it), or another source
   * of it (the PKCS#11 token: TokenCertificateSource, which takes its own chain file).
   */
  certificate: string | CertificateProvider;
  /** PEM file of the intermediates, leaf excluded (with a certificate file). */
  chain?: string;
  trustAnchorArn: string;
  profileArn: string;
  roleArn: string;
  /** 900 to 43200; the profile's own duration caps it. */
  durationSeconds: number;
  /** Honoured only by profiles that accept a custom session name. */
  roleSessionName?: string;
  /** Override of https://rolesanywhere.<region>.amazonaws.com (tests, VPC endpoints). */
  endpoint?: string;
  now?: () => number;
  /** Attempts inside one fetch() for throttling, 5xx and network errors. Default 3. */
  maxAttempts?: number;
  /** One deadline per CreateSession call, connect to last body byte (default 10 s). */
  requestTimeoutMs?: number;
  /** Largest answer read (default 256 KiB: an answer is a few KiB; more means something else answers). */
  maxBodyBytes?: number;
  /** First backoff step in ms (doubles, with jitter). Default 200. */
  retryBaseMs?: number;
  random?: () => number;
  /** Renews the certificate in the background ([profiles.X.renewal]); stopped by destroy(). */
  renewer?: CertificateRenewer;
}

export interface CertificateInfo {
  subject: string;
  /** Decimal, as it appears in the SigV4-X509 credential and in CloudTrail. */
  serial: string;
  notAfter: Date;
  /** The certificate file, or where else it came from (the token). */
  path: string;
}

const MIN_DURATION = 900;
const MAX_DURATION = 43200;
const MAX_RETRY_DELAY_MS = 5_000;
const SERVICE = 'Roles Anywhere';

function configError(message: string): ProviderError {
  return new ProviderError('InvalidConfiguration', message, false);
}

export class AwsRolesAnywhereProvider implements CredentialProvider<AwsCredentials> {
  readonly credentialId = awsCredentialId;
  readonly unattended: boolean;
  readonly region: string;
  readonly endpoint: string;
  readonly #opts: AwsRolesAnywhereProviderOptions;
  readonly #certs: CertificateProvider;
  readonly #url: URL;
  readonly #now: () => number;
  readonly #random: () => number;
  /** Service time minus our time, learnt from Date headers; 0 until a response says otherwise. */
  readonly #skew = new ClockSkew();

  /** Throws ProviderError('InvalidConfiguration') for ARNs or durations that can never work. */
  constructor(opts: AwsRolesAnywhereProviderOptions) {
    const anchor = parseRolesAnywhereArn(opts.trustAnchorArn, 'trust-anchor');
    if (!anchor)
      throw configError(
        `trust anchor ARN ${opts.trustAnchorArn} does not look like arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>`,
      );
    const profile = parseRolesAnywhereArn(opts.profileArn, 'profile');
    if (!profile)
      throw configError(`profile ARN ${opts.profileArn} does not look like arn:aws:rolesanywhere:<region>:<account>:profile/<id>`);
    if (profile.region !== anchor.region) {
      throw configError(
        `the profile is in ${profile.region} but the trust anchor is in ${anchor.region}; Roles Anywhere needs both in one region`,
      );
    }
    if (!isRoleArn(opts.roleArn)) throw configError(`role ARN ${opts.roleArn} does not look like arn:aws:iam::<account>:role/<name>`);
    if (!Number.isInteger(opts.durationSeconds) || opts.durationSeconds < MIN_DURATION || opts.durationSeconds > MAX_DURATION) {
      throw configError(`durationSeconds must be a whole number from ${MIN_DURATION} to ${MAX_DURATION}, not ${opts.durationSeconds}`);
    }
    this.#opts = opts;
    this.region = anchor.region;
    this.endpoint = (opts.endpoint ?? defaultEndpoint(anchor.partition, anchor.region)).replace(/\/+$/, '');
    let base: URL;
    try {
      base = new URL(`${this.endpoint}/`);
    } catch {
      throw configError(`endpoint ${this.endpoint} is not a URL`);
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw configError(`endpoint ${this.endpoint} must be http(s)`);
    this.#url = new URL('sessions', base);
    this.#certs = typeof opts.certificate === 'string' ? new CertificateSource(opts.certificate, opts.chain) : opts.certificate;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.unattended = !opts.key.userPresence;
  }

  /** The renewal state for /health, status, doctor and /metrics; undefined without [profiles.X.renewal]. */
  renewalStatus(): RenewalStatus | undefined {
    return this.#opts.renewer?.status();
  }

  get renewer(): CertificateRenewer | undefined {
    return this.#opts.renewer;
  }

  destroy(): void {
    this.#opts.renewer?.stop();
  }

  describe(): ProviderDescription {
    return {
      type: 'aws-rolesanywhere',
      source: `rolesanywhere:CreateSession ${this.endpoint}`,
      principal: this.#opts.roleArn,
      details: { roleArn: this.#opts.roleArn, region: this.region },
    };
  }

  /**
   * The device certificate for /health expiry warnings: as it is on disk now (re-read if changed), or the
   * one last read from the token; undefined if unreadable.
   */
  certificateInfo(): CertificateInfo | undefined {
    const chain = this.#certs.known();
    if (chain === undefined) return undefined;
    return { subject: chain.leaf.subject, serial: chain.leaf.serialDecimal, notAfter: chain.leaf.notAfter, path: this.#certs.where };
  }

  /** The service-minus-local clock offset in ms currently applied when signing. */
  get clockSkewMs(): number {
    return this.#skew.ms;
  }

  async #loadCertificates(): Promise<CertificateChain> {
    let chain: CertificateChain;
    try {
      chain = await this.#certs.current();
    } catch (err) {
      if (err instanceof CertificateError) throw new ProviderError(err.code, err.message, true);
      throw err;
    }
    // Every time: the certificate or chain may have been replaced (a key file is re-read by the key itself).
    this.#checkKeyMatches(chain);
    return chain;
  }

  #checkKeyMatches(chain: CertificateChain): void {
    const { key } = this.#opts;
    const wantType = key.algorithm === 'AWS4-X509-RSA-SHA256' ? 'RSA' : 'EC';
    if (chain.leaf.keyType !== wantType) {
      throw new ProviderError(
        'KeyCertificateMismatch',
        `the certificate from ${this.#certs.where} holds an ${chain.leaf.keyType} key but ${key.describe()} is ${wantType}`,
        true,
      );
    }
    let spki: Uint8Array | undefined;
    try {
      spki = key.publicKeySpki?.();
    } catch (err) {
      throw new ProviderError('KeyUnavailable', `${key.describe()}: ${(err as Error).message}`, true);
    }
    if (spki !== undefined && !Buffer.from(spki).equals(Buffer.from(chain.leaf.spki))) {
      throw new ProviderError(
        'KeyCertificateMismatch',
        `the certificate from ${this.#certs.where} (${chain.leaf.subject}) is not for ${key.describe()}`,
        true,
      );
    }
  }

  /** Signs a CreateSession request as of `atMs` (our clock plus the learnt offset). Exposed for tests and tools. */
  async signCreateSession(chain: CertificateChain, atMs: number): Promise<{ url: string; body: string; signed: SignedRequest }> {
    const o = this.#opts;
    const body = JSON.stringify({
      durationSeconds: o.durationSeconds,
      ...(o.roleSessionName !== undefined ? { roleSessionName: o.roleSessionName } : {}),
    });
    let signed: SignedRequest;
    try {
      signed = await signRequest(
        {
          method: 'POST',
          host: this.#url.host,
          path: this.#url.pathname,
          query: { profileArn: o.profileArn, roleArn: o.roleArn, trustAnchorArn: o.trustAnchorArn },
          headers: { 'content-type': 'application/json' },
          body,
          amzDate: amzDate(atMs),
          region: this.region,
          algorithm: o.key.algorithm,
          certificate: chain.leaf.der,
          chain: chain.chain.map((c) => c.der),
          serial: chain.leaf.serialDecimal,
        },
        o.key,
      );
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      // A hardware key that is unplugged or locked: its own code (TOKEN_NOT_PRESENT, PIN_INCORRECT...)
      // reaches /health; the message is the backend's, never key material.
      const code = isKeyBackendError(err) ? err.code : 'SigningFailed';
      throw new ProviderError(code, `${o.key.describe()} could not sign: ${(err as Error).message}`, true);
    }
    return { url: `${this.#url.origin}${this.#url.pathname}?${signed.queryString}`, body, signed };
  }

  #retryDelay(attempt: number, retryAfter: string | null): number {
    const hinted = retryAfter !== null && /^\d{1,2}$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
    const base = this.#opts.retryBaseMs ?? 200;
    const exp = Math.min(MAX_RETRY_DELAY_MS, base * 2 ** (attempt - 1));
    // Equal jitter: at least half the step, so retries from a fleet spread out without collapsing to 0.
    const jittered = exp / 2 + this.#random() * (exp / 2);
    return Math.min(MAX_RETRY_DELAY_MS, Math.max(jittered, hinted ?? 0));
  }

  async fetch(signal?: AbortSignal): Promise<AwsCredentials> {
    const maxAttempts = Math.max(1, this.#opts.maxAttempts ?? 3);
    const limits: UpstreamLimits = {
      deadlineMs: this.#opts.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs,
      maxBodyBytes: this.#opts.maxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
    };
    let skewResigned = false;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw new ProviderError('Aborted', 'the request to Roles Anywhere was cancelled', true);
      // Read (or re-read) the certificate on every attempt: a renewal may land between retries.
      const chain = await this.#loadCertificates();
      const usedSkew = this.#skew.ms;
      const { url, body, signed } = await this.signCreateSession(chain, this.#now() + usedSkew);
      const { headers } = signed;
      const sentAt = this.#now();
      // A deadline passed is worth another attempt; a cancel or an oversized answer is not.
      const got = await boundedFetch(
        url,
        { method: 'POST', headers, body },
        { service: SERVICE, limits, ...(signal ? { signal } : {}) },
      ).catch((err: unknown) => {
        if (err instanceof ProviderError && err.code !== 'UpstreamTimeout') throw err;
        return err instanceof ProviderError ? err : mapTransportError(err, { timedOut: false, aborted: signal?.aborted ?? false });
      });
      let error: ProviderError;
      let retryAfter: string | null = null;
      if (got instanceof ProviderError) {
        error = got;
        if (error.code === 'Aborted') throw error;
      } else {
        this.#skew.observe(got.headers.get('date'), sentAt, this.#now(), SERVICE);
        const text = got.body.toString('utf8');
        if (got.status === 201) {
          // Expiration is in the service's clock; in ours it comes skew earlier (or later).
          const c = parseCreateSessionResponse(text, got.status, this.#opts.roleArn).credentials;
          const expiration = this.#skew.toLocal(c.expiration);
          checkExpiration(SERVICE, expiration, this.#now(), this.#opts.durationSeconds);
          return { ...c, expiration };
        }
        error = mapErrorResponse(got.status, got.headers, text);
        retryAfter = got.headers.get('retry-after');
      }
      if (isClockSkewError(error) && !skewResigned && this.#skew.ms !== usedSkew) {
        // The refusal's Date header taught us the service's time: re-sign at once (once per fetch),
        // without using up a retry.
        skewResigned = true;
        attempt--;
        continue;
      }
      if (!error.retryable || attempt >= maxAttempts) throw error;
      try {
        await sleep(this.#retryDelay(attempt, retryAfter), undefined, signal ? { signal } : {});
      } catch {
        throw new ProviderError('Aborted', 'the request to Roles Anywhere was cancelled', true);
      }
    }
  }
}
