/**
 * Provider `aws-assume-role`: STS AssumeRole signed with the credentials of another profile (its
 * `source_profile`), for a second account or a narrower role. The source is a callback, normally the
 * source profile's refresher, so a chain of profiles shares one upstream session; it is asked on every
 * fetch, so the call is always signed with the session the refresher holds now.
 */
import { ClockSkew } from '../../../providers/clock-skew.js';
import { localCredentials, stsCallTuning } from '../sts-credentials.js';
import { ProviderError, type CredentialProvider, type ProviderDescription } from '../../../providers/types.js';
import { awsCredentialId, type AwsCredentials } from '../credentials.js';
import { callSts } from '../sts/client.js';
import { stsEndpoint } from '../sts/endpoint.js';

export interface AwsAssumeRoleProviderOptions {
  /** The source profile's current credentials; throws ProviderError when it has none. */
  source: () => Promise<AwsCredentials>;
  /** The source profile's name, for messages. */
  sourceName?: string;
  roleArn: string;
  region: string;
  /** 900 to the role's maximum; STS caps sessions from another role's session (role chaining) at 3600. */
  durationSeconds: number;
  roleSessionName: string;
  stsEndpoint?: string;
  externalId?: string;
  /** False when the source needs a person present: then this profile cannot refresh unattended either. */
  unattended?: boolean;
  /** Attempts inside one refresh (throttling, 5xx, network; sts/retry.ts). */
  maxAttempts?: number;
  /** One deadline per STS attempt, connect to last body byte (default 10 s); the refresher bounds the whole refresh. */
  requestTimeoutMs?: number;
  /** Largest STS answer read (default 256 KiB). */
  maxBodyBytes?: number;
  now?: () => number;
  /** Jitter source for retry delays (tests). */
  random?: () => number;
}

export class AwsAssumeRoleProvider implements CredentialProvider<AwsCredentials> {
  readonly credentialId = awsCredentialId;
  readonly unattended: boolean;
  readonly #url: URL;
  /** Learnt from every answer's Date header and used to sign: kept across fetches. */
  readonly #skew = new ClockSkew();

  /** Throws ProviderError InvalidConfiguration for an sts_endpoint that is not an http(s) URL. */
  constructor(private readonly opts: AwsAssumeRoleProviderOptions) {
    this.unattended = opts.unattended ?? true;
    this.#url = stsEndpoint(opts.region, opts.stsEndpoint);
  }

  async #sourceCredentials(): Promise<AwsCredentials> {
    const from = this.opts.sourceName ? `source profile ${this.opts.sourceName}` : 'the source profile';
    try {
      return await this.opts.source();
    } catch (err) {
      // Keep the source's own code (ExpiredToken, AccessDenied...) so /health shows the real cause.
      if (err instanceof ProviderError) throw new ProviderError(err.code, `${from}: ${err.message}`, err.retryable, err.upstreamStatus);
      throw new ProviderError('SourceCredentialsUnavailable', `${from} has no credentials: ${(err as Error).message ?? String(err)}`, true);
    }
  }

  async fetch(signal?: AbortSignal): Promise<AwsCredentials> {
    const source = await this.#sourceCredentials();
    const now = this.opts.now ?? Date.now;
    const out = await callSts({
      action: 'AssumeRole',
      params: {
        RoleArn: this.opts.roleArn,
        RoleSessionName: this.opts.roleSessionName,
        DurationSeconds: this.opts.durationSeconds,
        ExternalId: this.opts.externalId,
      },
      url: this.#url,
      region: this.opts.region,
      // Exactly the source session; never a default chain (which might point back at credport).
      credentials: { accessKeyId: source.accessKeyId, secretAccessKey: source.secretAccessKey, sessionToken: source.sessionToken },
      ...stsCallTuning(this.opts),
      skew: this.#skew,
      now,
      ...(signal ? { signal } : {}),
    });
    return localCredentials(out, this.opts, this.#skew, now);
  }

  describe(): ProviderDescription {
    const endpoint = this.opts.stsEndpoint ?? this.#url.origin;
    return {
      type: 'aws-assume-role',
      source: `sts:AssumeRole ${endpoint}`,
      principal: this.opts.roleArn,
      details: { roleArn: this.opts.roleArn, region: this.opts.region },
    };
  }
}
