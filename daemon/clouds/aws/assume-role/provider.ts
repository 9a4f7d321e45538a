/**
 * Provider `aws-assume-role`: STS AssumeRole signed with the credentials of another profile (its
 * `source_profile`), for a second account or a narrower role. The source is a callback, normally the
 * source profile's refresher, so a chain of profiles shares one upstream session.
 *
 * A new STSClient per fetch: the SDK caches whatever a credentials callback returned until five minutes
 * before it expires, which would keep signing with a source session the refresher has already
 * replaced. One client every half hour costs nothing worth saving.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { ClockSkew } from '../../../providers/clock-skew.js';
import { credentialsFromSts } from '../sts-credentials.js';
import { mapStsError } from '../oidc/errors.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../../providers/upstream/bounded-fetch.js';
import { checkExpiration } from '../../../providers/upstream/plausibility.js';
import { BoundedSdkHandler } from '../../../providers/upstream/sdk-handler.js';
import { ProviderError, type CredentialProvider, type ProviderDescription } from '../../../providers/types.js';
import { awsCredentialId, type AwsCredentials } from '../credentials.js';

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
  maxAttempts?: number;
  /** One deadline per STS call, connect to last body byte (default 10 s). */
  requestTimeoutMs?: number;
  /** Largest STS answer read (default 256 KiB). */
  maxBodyBytes?: number;
  now?: () => number;
}

export class AwsAssumeRoleProvider implements CredentialProvider<AwsCredentials> {
  readonly credentialId = awsCredentialId;
  readonly unattended: boolean;
  readonly #skew = new ClockSkew();

  constructor(private readonly opts: AwsAssumeRoleProviderOptions) {
    this.unattended = opts.unattended ?? true;
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
    const client = new STSClient({
      region: this.opts.region,
      ...(this.opts.stsEndpoint ? { endpoint: this.opts.stsEndpoint } : {}),
      maxAttempts: this.opts.maxAttempts ?? 3,
      requestHandler: new BoundedSdkHandler('STS', {
        deadlineMs: this.opts.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs,
        maxBodyBytes: this.opts.maxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
      }),
      // Exactly the source session; never the SDK's default chain (which might point back at credport).
      credentials: {
        accessKeyId: source.accessKeyId,
        secretAccessKey: source.secretAccessKey,
        sessionToken: source.sessionToken,
        expiration: source.expiration,
      },
    });
    this.#skew.watch(client, this.opts.now ?? Date.now);
    let out;
    try {
      out = await client.send(
        new AssumeRoleCommand({
          RoleArn: this.opts.roleArn,
          RoleSessionName: this.opts.roleSessionName,
          DurationSeconds: this.opts.durationSeconds,
          ...(this.opts.externalId !== undefined ? { ExternalId: this.opts.externalId } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (err) {
      throw mapStsError(err);
    } finally {
      client.destroy();
    }
    const c = credentialsFromSts(out.Credentials, this.opts.roleArn, out.AssumedRoleUser?.Arn, out.$metadata.httpStatusCode);
    const expiration = this.#skew.toLocal(c.expiration);
    checkExpiration('STS', expiration, (this.opts.now ?? Date.now)(), this.opts.durationSeconds);
    return { ...c, expiration };
  }

  describe(): ProviderDescription {
    const endpoint = this.opts.stsEndpoint ?? `https://sts.${this.opts.region}.amazonaws.com`;
    return {
      type: 'aws-assume-role',
      source: `sts:AssumeRole ${endpoint}`,
      principal: this.opts.roleArn,
      details: { roleArn: this.opts.roleArn, region: this.opts.region },
    };
  }
}
