/**
 * Every cloud credport knows: one line each. The config loader reads their profile types from here;
 * the daemon and the CLI load a cloud's runtime only when a profile of it is configured.
 */
import { aws } from './aws/index.js';
import { gcp } from './gcp/index.js';
import type { CloudModule, ProfileTypeSpec } from './types.js';

export const CLOUDS: readonly CloudModule[] = [aws, gcp];

const byType = new Map<string, { cloud: CloudModule; spec: ProfileTypeSpec }>();
for (const cloud of CLOUDS) for (const spec of cloud.profileTypes) byType.set(spec.type, { cloud, spec });

export const PROFILE_TYPES: readonly string[] = [...byType.keys()];

/** The cloud and spec of a profile type; undefined for a type no cloud registers. */
export function profileType(type: string): { cloud: CloudModule; spec: ProfileTypeSpec } | undefined {
  return byType.get(type);
}

export function cloudNamed(name: string): CloudModule | undefined {
  return CLOUDS.find((c) => c.name === name);
}
