/**
 * One call to IAM Service Account Credentials for a service account (generateAccessToken,
 * generateIdToken): a JSON body, the federated token as the bearer, and an answer other than 200 read
 * as google.rpc's error. What each method answers is its caller's to read.
 */
import { iamCredentialsError } from '../errors.js';
import { callGoogle, type GoogleAnswer, type GoogleCallContext } from './google-call.js';

export const IAM_SERVICE = 'IAM Credentials';

export interface IamCredentialsCall {
  /** Base URL, no trailing slash. */
  endpoint: string;
  serviceAccount: string;
  method: 'generateAccessToken' | 'generateIdToken';
  payload: unknown;
  /** The STS token: a bearer credential. */
  federatedToken: string;
}

/** The 200 answer; any other status throws the error Google gave. */
export async function callIamCredentials(call: IamCredentialsCall, ctx: GoogleCallContext): Promise<GoogleAnswer> {
  const body = JSON.stringify(call.payload);
  const url = `${call.endpoint}/v1/projects/-/serviceAccounts/${encodeURIComponent(call.serviceAccount)}:${call.method}`;
  const answer = await callGoogle(
    IAM_SERVICE,
    url,
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${call.federatedToken}`,
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    },
    ctx,
  );
  if (answer.status !== 200) throw iamCredentialsError(answer.status, answer.text);
  return answer;
}
