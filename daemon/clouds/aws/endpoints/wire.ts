/**
 * Bodies exactly as the SDKs parse them. The formats are AWS's own:
 *   ECS: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
 *   IMDS: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html
 * and which client reads which field is in docs/clients.md.
 */
import type { AwsCredentials } from '../credentials.js';

/** botocore parses exactly %Y-%m-%dT%H:%M:%SZ: no fractional seconds. */
export function awsTimestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface EcsCredentialsBody {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  Expiration: string;
  AccountId?: string;
  RoleArn?: string;
}

export function ecsBody(c: AwsCredentials): EcsCredentialsBody {
  return {
    AccessKeyId: c.accessKeyId,
    SecretAccessKey: c.secretAccessKey,
    Token: c.sessionToken,
    Expiration: awsTimestamp(c.expiration),
    ...(c.accountId ? { AccountId: c.accountId } : {}),
    ...(c.roleArn ? { RoleArn: c.roleArn } : {}),
  };
}

export function imdsCredentialsBody(c: AwsCredentials, lastUpdated: Date): Record<string, string> {
  return {
    Code: 'Success',
    LastUpdated: awsTimestamp(lastUpdated),
    Type: 'AWS-HMAC',
    AccessKeyId: c.accessKeyId,
    SecretAccessKey: c.secretAccessKey,
    Token: c.sessionToken,
    Expiration: awsTimestamp(c.expiration),
    ...(c.accountId ? { AccountId: c.accountId } : {}),
  };
}

/**
 * Serialized bodies per credentials object: the same credentials are served
 * thousands of times between refreshes, so they are built and stringified
 * once. Keyed weakly: replaced credentials take their bodies with them.
 */
const ecsCache = new WeakMap<AwsCredentials, string>();
const imdsCache = new WeakMap<AwsCredentials, string>();

export function ecsBodyText(c: AwsCredentials): string {
  let text = ecsCache.get(c);
  if (text === undefined) {
    text = JSON.stringify(ecsBody(c));
    ecsCache.set(c, text);
  }
  return text;
}

export function imdsBodyText(c: AwsCredentials, lastUpdated: Date): string {
  let text = imdsCache.get(c);
  if (text === undefined) {
    text = JSON.stringify(imdsCredentialsBody(c, lastUpdated));
    imdsCache.set(c, text);
  }
  return text;
}
