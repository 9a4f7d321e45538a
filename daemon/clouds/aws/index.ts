/** AWS as the daemon and the CLI see it: its spec, and the runtime and CLI halves loaded on demand. */
import type { CloudModule } from '../types.js';
import { awsSpec } from './spec.js';

export const aws: CloudModule = {
  ...awsSpec,
  runtime: async () => (await import('./runtime.js')).awsRuntime,
  cli: async () => (await import('./cli.js')).awsCli,
};
