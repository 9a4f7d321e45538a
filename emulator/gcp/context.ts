// What the Google handlers need from the emulator around them: the registry, the token store, the
// clock and the test knobs. One object, built once by the emulator and passed to each request.

import type { GoogleIdTokenIssuer } from './id-tokens.js';
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
  /** Signs generateIdToken's ID tokens and publishes their keys. */
  idTokens?: GoogleIdTokenIssuer;
}
