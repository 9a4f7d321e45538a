/** Shared by every endpoint: a profile's credentials, or the error to send. */
import { serverError, type ErrorBody } from '../errors.js';
import type { Credentials } from '../providers/types.js';

export type { ErrorBody } from '../errors.js';
import { NoCredentialsError } from '../refresh/profile-refresher.js';
import type { ServerContext } from './context.js';

export type Lookup<C extends Credentials = Credentials> = { ok: true; credentials: C } | { ok: false; status: number; body: ErrorBody };

/** `cloud`: the endpoint's cloud; another cloud's profile is not found here (an ECS URL cannot serve Google tokens). */
export async function lookupCredentials<C extends Credentials>(ctx: ServerContext, profile: string, cloud: string): Promise<Lookup<C>> {
  const entry = ctx.profiles.get(profile);
  if (!entry || entry.cloud !== cloud) return { ok: false, ...serverError('ProfileNotFound', `no profile named ${profile}`) };
  try {
    return { ok: true, credentials: (await entry.refresher.get()) as C };
  } catch (err) {
    if (err instanceof NoCredentialsError) return { ok: false, status: 503, body: { Code: err.code, Message: err.message } };
    return { ok: false, ...serverError('InternalError', 'unexpected error; see the daemon log') };
  }
}
