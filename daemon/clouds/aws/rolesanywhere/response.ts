/**
 * Reads CreateSession's 201 body: {"credentialSet":[{"credentials":{accessKeyId, secretAccessKey,
 * sessionToken, expiration}, roleArn, assumedRoleUser:{arn, assumedRoleId}, sourceIdentity,
 * packedPolicySize}], "subjectArn"}. Anything incomplete is a MalformedResponse: a truncated body or a
 * proxy's page must never become half a set of credentials.
 */
import { accountFromArn } from '../sts-credentials.js';
import { ProviderError } from '../../../providers/types.js';
import type { AwsCredentials } from '../credentials.js';

export interface CreateSessionResult {
  credentials: AwsCredentials;
  subjectArn?: string;
  sourceIdentity?: string;
  assumedRoleArn?: string;
}

function malformed(why: string, status: number): ProviderError {
  return new ProviderError('MalformedResponse', `Roles Anywhere answered with a response that could not be read: ${why}`, true, status);
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** ISO 8601 with a date and a time; Date.parse alone accepts far too much. */
function parseExpiration(value: unknown): Date | undefined {
  if (typeof value !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/.test(value)) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function parseCreateSessionResponse(bodyText: string, status: number, requestedRoleArn: string): CreateSessionResult {
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    throw malformed(bodyText.length === 0 ? 'empty body' : 'the body is not JSON (truncated?)', status);
  }
  const top = record(body);
  const set = top?.credentialSet;
  if (!Array.isArray(set) || set.length === 0) throw malformed('no credentialSet', status);
  const first = record(set[0]);
  const c = record(first?.credentials);
  const accessKeyId = text(c?.accessKeyId);
  const secretAccessKey = text(c?.secretAccessKey);
  const sessionToken = text(c?.sessionToken);
  const expiration = parseExpiration(c?.expiration);
  if (!accessKeyId || !secretAccessKey || !sessionToken) throw malformed('credentials are incomplete', status);
  if (!expiration) throw malformed('credentials have no valid expiration', status);
  const roleArn = text(first?.roleArn) ?? requestedRoleArn;
  const assumedRoleArn = text(record(first?.assumedRoleUser)?.arn);
  const accountId = accountFromArn(assumedRoleArn ?? roleArn);
  const subjectArn = text(top?.subjectArn);
  const sourceIdentity = text(first?.sourceIdentity);
  return {
    credentials: { accessKeyId, secretAccessKey, sessionToken, expiration, roleArn, ...(accountId ? { accountId } : {}) },
    ...(subjectArn ? { subjectArn } : {}),
    ...(sourceIdentity ? { sourceIdentity } : {}),
    ...(assumedRoleArn ? { assumedRoleArn } : {}),
  };
}
