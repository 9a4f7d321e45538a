/**
 * What the Google endpoints need from the daemon, and nothing more: the
 * endpoints are fastify plugins that the server registers with an
 * implementation of GcpServing, so they know no refresher, no config and no
 * audit log (the implementation does the handout checks: audit, peer,
 * executable).
 */
import type { Socket } from 'node:net';

export interface GcpAccessToken {
  accessToken: string;
  expiration: Date;
  scopes: string[];
}

/** Google's error shape (OAuth and STS alike): a code and one line for a human. */
export interface GoogleErrorBody {
  error: string;
  error_description: string;
}

export type Served<T> = { ok: true; value: T } | { ok: false; status: number; body: GoogleErrorBody };

export interface GcpProfileInfo {
  projectId?: string;
  /**
   * The project's number, when the profile knows it (project_number): gcloud asks
   * `project/numeric-project-id` to decide whether it runs on GCE at all.
   */
  projectNumber?: string;
  /** The service account the profile impersonates; absent when the federated token is used directly. */
  serviceAccount?: string;
  scopes: string[];
}

export interface GcpServing {
  /** The profile the metadata server serves (the one gcp profile with metadata_server = true), if any. */
  metadataProfile(): string | undefined;
  /** The pre-refreshed access token of a profile (audit, peer and executable checks are the implementation's). */
  accessToken(profile: string, socket: Socket): Promise<Served<GcpAccessToken>>;
  /** A fresh device-signed subject token (JWT) for a profile, and when it expires. */
  subjectToken(profile: string, socket: Socket): Promise<Served<{ token: string; expiration: Date }>>;
  /** What a profile is: project, service account it impersonates (if any), its scopes. */
  info(profile: string): GcpProfileInfo | undefined;
  /** The per-install secret the subject-token route requires in a header (compared in constant time). */
  subjectTokenSecret(): string;
}

/**
 * Every Google route hands out a credential or leads to one, so each declares
 * the `credentials` access class that the daemon's peer gate reads from the
 * route config (daemon/server/peer-gate.ts).
 */
export const CREDENTIALS_ROUTE = { access: 'credentials' as const };

export function googleError(error: string, description: string): GoogleErrorBody {
  return { error, error_description: description };
}
