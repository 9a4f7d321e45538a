// What the Google handlers need from the emulator around them: the registry, the token store, the
// clock and the test knobs. One object, built once by the emulator and passed to each request.

import type { WorkloadIdentityRegistry } from './registry.js';
import type { GoogleTokenStore } from './token-store.js';

export interface GoogleContext {
  registry: WorkloadIdentityRegistry;
  tokens: GoogleTokenStore;
  /** Clock in milliseconds. */
  now(): number;
  clockSkewSeconds: number;
  /** Test override of every issued token's lifetime in seconds; null means the service's own rule. */
  tokenLifetimeSeconds(): number | null;
}

/** Google's request size is not documented; STS and IAM Credentials bodies are a few KiB at most. */
export const MAX_BODY_BYTES = 64 * 1024;

export function mediaType(header: string | string[] | undefined): string {
  return typeof header === 'string' ? header.split(';')[0]?.trim().toLowerCase() ?? '' : '';
}
