/** What every credential provider returns and how it fails. */

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
 * for logs, /health and the HTTP error body. Messages never contain secrets.
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly upstreamStatus?: number,
  ) {
    super(message);
  }
}
