/** AWS credentials as the AWS providers return them and the ECS/IMDS endpoints serve them. */
import type { Credentials } from '../../providers/types.js';

export interface AwsCredentials extends Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  /** 12-digit account, when known; newer SDKs use it for account-based endpoints. */
  accountId?: string;
  /** The IAM role the credentials belong to (the ECS agent reports it; SDKs ignore it). */
  roleArn?: string;
}

/** For the audit log: the access key id is public; the secret and session token never leave. */
export function awsCredentialId(c: AwsCredentials): string {
  return c.accessKeyId;
}
