/** Google Cloud as the daemon and the CLI see it: its spec, and the runtime and CLI halves loaded on demand. */
import type { CloudModule } from '../types.js';
import { gcpSpec } from './spec.js';

export const gcp: CloudModule = {
  ...gcpSpec,
  runtime: async () => (await import('./runtime.js')).gcpRuntime,
  cli: async () => (await import('./cli.js')).gcpCli,
};
