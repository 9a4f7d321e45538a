/** What every STS-backed provider does with an answer: check it is complete, and shape it. */
import { ProviderError } from '../../providers/types.js';
import type { AwsCredentials } from './credentials.js';
import type { StsCredentialFields } from './sts/response.js';

/** The 12-digit account of an ARN (arn:partition:service:region:ACCOUNT:resource), if it has one. */
export function accountFromArn(arn: string | undefined): string | undefined {
  const account = arn?.split(':')[4];
  return account && /^\d{12}$/.test(account) ? account : undefined;
}

/**
 * STS may answer 200 with parts missing (a proxy's page that happens to parse);
 * such an answer is a failure, never credentials with an empty field.
 */
export function credentialsFromSts(
  c: StsCredentialFields | undefined,
  roleArn: string,
  assumedRoleArn: string | undefined,
  status: number | undefined,
): AwsCredentials {
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date) || Number.isNaN(c.Expiration.getTime())) {
    throw new ProviderError('MalformedResponse', 'STS answered without complete credentials', true, status);
  }
  const accountId = accountFromArn(assumedRoleArn ?? roleArn);
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: c.Expiration,
    roleArn,
    ...(accountId ? { accountId } : {}),
  };
}
