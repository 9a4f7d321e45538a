/** Shared by the ECS and IMDS routes: a profile's credentials, or the error body to send. */
import type { AwsCredentials } from '../providers/types.js';
import { NoCredentialsError } from '../refresh/profile-refresher.js';
import type { ServerContext } from './context.js';
import type { ErrorBody } from '../clouds/aws/endpoints/wire.js';

export type Lookup = { ok: true; credentials: AwsCredentials } | { ok: false; status: number; body: ErrorBody };

export async function lookupCredentials(ctx: ServerContext, profile: string): Promise<Lookup> {
  const r = ctx.refreshers.get(profile);
  if (!r) return { ok: false, status: 404, body: { Code: 'ProfileNotFound', Message: `no profile named ${profile}` } };
  try {
    return { ok: true, credentials: await r.get() };
  } catch (err) {
    if (err instanceof NoCredentialsError) return { ok: false, status: 503, body: { Code: err.code, Message: err.message } };
    return { ok: false, status: 500, body: { Code: 'InternalError', Message: 'unexpected error; see the daemon log' } };
  }
}
