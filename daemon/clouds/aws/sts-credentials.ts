/** What every STS-backed provider does around a call: its tuning, and the answer checked and shaped. */
import type { ClockSkew } from '../../providers/clock-skew.js';
import { ProviderError } from '../../providers/types.js';
import { DEFAULT_UPSTREAM_LIMITS } from '../../providers/upstream/bounded-fetch.js';
import { checkExpiration } from '../../providers/upstream/plausibility.js';
import type { AwsCredentials } from './credentials.js';
import type { StsCall, StsResult } from './sts/client.js';
import type { StsCredentialFields } from './sts/response.js';

/** The upstream tuning an STS-backed provider takes. */
export interface StsTuning {
  requestTimeoutMs?: number;
  maxBodyBytes?: number;
  maxAttempts?: number;
  random?: () => number;
}

/** A call's limits and attempts from a provider's tuning (the defaults every upstream call has). */
export function stsCallTuning(o: StsTuning): Pick<StsCall, 'limits' | 'maxAttempts' | 'random'> {
  return {
    limits: {
      deadlineMs: o.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs,
      maxBodyBytes: o.maxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
    },
    maxAttempts: o.maxAttempts ?? 3,
    ...(o.random ? { random: o.random } : {}),
  };
}

/** The answer's credentials, complete, with the expiration moved to our clock and checked against the asked duration. */
export function localCredentials(
  out: StsResult,
  o: { roleArn: string; durationSeconds: number },
  skew: ClockSkew,
  now: () => number,
): AwsCredentials {
  const c = credentialsFromSts(out.credentials, o.roleArn, out.assumedRoleArn, out.status);
  const expiration = skew.toLocal(c.expiration);
  checkExpiration('STS', expiration, now(), o.durationSeconds);
  return { ...c, expiration };
}

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
