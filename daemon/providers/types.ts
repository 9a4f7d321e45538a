/** What every credential provider returns and how it fails. */
import { sanitizeCode, sanitizeMessage } from './upstream/error-text.js';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  /** 12-digit account, when known; newer SDKs use it for account-based endpoints. */
  accountId?: string;
  /** The IAM role the credentials belong to (the ECS agent reports it; SDKs ignore it). */
  roleArn?: string;
}

export interface ProviderDescription {
  type: string;
  /** Where credentials come from, for /health: the upstream call and endpoint. */
  source: string;
  roleArn: string;
  region: string;
}

export interface CredentialProvider {
  /** False when signing needs a person present: such profiles refresh only on demand. */
  readonly unattended: boolean;
  fetch(signal?: AbortSignal): Promise<AwsCredentials>;
  describe(): ProviderDescription;
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
