/**
 * Each cloud's CLI half by cloud name, reached without loading any cloud's spec (registry.ts loads
 * all of them): the CLI's slim path (cli/fast/) loads only the one cloud a profile belongs to. One
 * line per cloud, kept equal to registry.ts's `cli` by test/cli-fast-path.test.ts.
 */
import type { CloudCli } from './types.js';

export const CLOUD_CLIS: Readonly<Record<string, () => Promise<CloudCli>>> = {
  aws: async () => (await import('./aws/cli.js')).awsCli,
  gcp: async () => (await import('./gcp/cli.js')).gcpCli,
  azure: async () => (await import('./azure/cli.js')).azureCli,
};
