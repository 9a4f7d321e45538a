/** Azure as the daemon and the CLI see it: its spec, and the runtime and CLI halves loaded on demand. */
import type { CloudModule } from '../types.js';
import { azureSpec } from './spec.js';

export const azure: CloudModule = {
  ...azureSpec,
  runtime: async () => (await import('./runtime.js')).azureRuntime,
  cli: async () => (await import('./cli.js')).azureCli,
};
