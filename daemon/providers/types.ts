/**
 * What every credential provider returns and how it fails, whatever the cloud. The core (refresher,
 * server, health) handles credentials only as "something with an expiry"; each cloud's endpoints know
 * their own shape.
 */
import { sanitizeCode, sanitizeMessage } from './upstream/error-text.js';

/** Credentials of any cloud: the core reads only when they stop working. */
export interface Credentials {
  readonly expiration: Date;
}

export interface ProviderDescription {
  /** The profile type, e.g. aws-oidc. */
  type: string;
  /** Where credentials come from, for /health: the upstream call and endpoint. */
  source: string;
  /** Who the credentials act as: a role ARN, a service account. */
  principal: string;
  /** Cloud-specific facts, shown at the top level of the profile in /health (AWS: roleArn, region). */
  details?: Readonly<Record<string, string>>;
}

export interface CredentialProvider<C extends Credentials = Credentials> {
  /** False when signing needs a person present: such profiles refresh only on demand. */
  readonly unattended: boolean;
  fetch(signal?: AbortSignal): Promise<C>;
  describe(): ProviderDescription;
  /**
   * A public identifier of credentials this provider returned, for the audit log (an AWS access key
   * id; a hash prefix for bearer tokens). Never the secret itself. Without it the audit says "unknown".
   */
  credentialId?(c: C): string;
}

/**
 * A failure to get credentials, with the upstream's own code and message kept
 * for logs, /health and the HTTP error body. Both are sanitized here, the one
 * place every upstream error passes: an upstream's text is untrusted (length,
 * control characters, echoed tokens), and no caller can forget to clean it.
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly code: string;
  constructor(
    code: string,
    message: string,
    readonly retryable: boolean,
    readonly upstreamStatus?: number,
  ) {
    super(sanitizeMessage(message));
    this.code = sanitizeCode(code);
  }
}

/** A provider the daemon owns: destroyed when its profile is dropped. */
export type ManagedProvider<C extends Credentials = Credentials> = CredentialProvider<C> & {
  destroy?: () => void;
  /** A certificate whose expiry /health watches (Roles Anywhere). */
  certificateInfo?: () => CertificateInfo | undefined;
  /** The certificate's automatic renewal, when configured. */
  renewalStatus?: () => CertificateRenewalStatus | undefined;
};

/** What /health, status, doctor and /metrics show of a certificate's automatic renewal. */
export interface CertificateRenewalStatus {
  method: string;
  state: string;
  nextAttempt: string | null;
  lastAttempt: string | null;
  lastRenewed: string | null;
  lastError: { code: string; message: string; at: string } | null;
  consecutiveFailures: number;
}

export interface CertificateInfo {
  subject: string;
  serial: string;
  notAfter: Date;
}
