/** The gcp-wif provider as the daemon holds it: the generic interface, plus what Google's endpoints ask. */
import { createHash } from 'node:crypto';
import type { ManagedProvider } from '../types.js';
import type { GcpAccessToken } from './credentials.js';
import type { GcpWifProfileConfig } from './schema.js';
import type { GcpWifProvider } from './wif/provider.js';

export interface GcpManagedProvider extends ManagedProvider<GcpAccessToken> {
  readonly profile: GcpWifProfileConfig;
  subjectToken(signal?: AbortSignal): Promise<{ token: string; expiration: Date }>;
}

/**
 * The audit log's id of a bearer token: a short SHA-256 prefix, enough to match a line to a token a
 * user holds, useless to anyone who reads the log.
 */
export function bearerTokenId(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
}

export function manageGcpProvider(provider: GcpWifProvider, profile: GcpWifProfileConfig): GcpManagedProvider {
  return {
    profile,
    get unattended() {
      return provider.unattended;
    },
    fetch: (signal) => provider.fetch(signal),
    subjectToken: (signal) => provider.subjectToken(signal),
    credentialId: (c: GcpAccessToken | { token: string }) => bearerTokenId('accessToken' in c ? c.accessToken : c.token),
    describe: () => {
      const { type, source, principal, audience } = provider.describe();
      return {
        type,
        source,
        principal,
        details: {
          audience,
          ...(profile.project_id ? { projectId: profile.project_id } : {}),
          ...(profile.metadata_server ? { metadataServer: 'yes' } : {}),
        },
      };
    },
  };
}
