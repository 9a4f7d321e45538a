/**
 * Every cloud as the daemon and the CLI use it: one line per cloud (and one in specs.ts for its
 * profile types). A cloud's runtime is loaded only when a profile of it is configured.
 */
import { aws } from './aws/index.js';
import { gcp } from './gcp/index.js';
import { azure } from './azure/index.js';
import type { CloudModule } from './types.js';

export const CLOUDS: readonly CloudModule[] = [aws, gcp, azure];

export function cloudNamed(name: string): CloudModule | undefined {
  return CLOUDS.find((c) => c.name === name);
}

/** The cloud module of a profile type. */
export function cloudOfType(type: string): CloudModule | undefined {
  return CLOUDS.find((c) => c.profileTypes.some((t) => t.type === type));
}
