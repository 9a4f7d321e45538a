/**
 * GcpServing for a running daemon: Google's endpoints ask for a profile's access token or a fresh
 * subject token, and get them through the same handout as every endpoint (the profile's executable
 * rule, the audit record), in Google's error shape.
 */
import type { Socket } from 'node:net';
import type { Lookup } from '../../server/credentials-lookup.js';
import type { ServerContext } from '../../server/context.js';
import { handOut } from '../../server/handout.js';
import type { GcpAccessToken } from './credentials.js';
import { googleError, type GcpServing, type Served } from './endpoints/serving.js';
import type { GcpManagedProvider } from './managed-provider.js';
import { ProviderError } from '../../providers/types.js';

/** A gcp profile's provider, or undefined for another cloud's profile or none. */
export function gcpProvider(ctx: ServerContext, profile: string): GcpManagedProvider | undefined {
  const e = ctx.profiles.get(profile);
  return e?.cloud === 'gcp' ? (e.provider as GcpManagedProvider) : undefined;
}

function served<T, C extends { expiration: Date }>(r: Lookup<C>, value: (c: C) => T): Served<T> {
  if (r.ok) return { ok: true, value: value(r.credentials) };
  return { ok: false, status: r.status, body: googleError(r.body.Code, r.body.Message) };
}

/** Project number of the pool's project, from the audience //iam.googleapis.com/projects/NUM/... */
const projectNumber = (audience: string): string | undefined => /\/projects\/(\d+)\//.exec(audience)?.[1];

export function gcpServing(ctx: ServerContext, secret: () => string): GcpServing {
  return {
    metadataProfile() {
      for (const e of ctx.profiles.entries())
        if (e.cloud === 'gcp' && (e.provider as GcpManagedProvider).profile.metadata_server) return e.name;
      return undefined;
    },
    async accessToken(profile: string, socket: Socket) {
      const r = await handOut<GcpAccessToken>(ctx, socket, profile, 'gcp-metadata', 'gcp');
      return served(r, (c) => ({ accessToken: c.accessToken, expiration: c.expiration, scopes: c.scopes }));
    },
    async subjectToken(profile: string, socket: Socket) {
      const provider = gcpProvider(ctx, profile);
      const r = await handOut<{ token: string; expiration: Date }>(ctx, socket, profile, 'gcp-subject-token', 'gcp', async () => {
        if (!provider) return { ok: false, status: 404, body: { Code: 'not_found', Message: `no Google Cloud profile named ${profile}` } };
        try {
          return { ok: true, credentials: await provider.subjectToken() };
        } catch (err) {
          const e = err instanceof ProviderError ? err : new ProviderError('InternalError', 'the subject token could not be signed', true);
          return { ok: false, status: 503, body: { Code: e.code, Message: `profile ${profile}: ${e.message}` } };
        }
      });
      return served(r, (c) => c);
    },
    info(profile: string) {
      const p = gcpProvider(ctx, profile)?.profile;
      if (!p) return undefined;
      const number = projectNumber(p.audience);
      return {
        ...(p.project_id ? { projectId: p.project_id } : {}),
        ...(number ? { projectNumber: number } : {}),
        ...(p.service_account ? { serviceAccount: p.service_account } : {}),
        scopes: p.scopes,
      };
    },
    subjectTokenSecret: secret,
  };
}
