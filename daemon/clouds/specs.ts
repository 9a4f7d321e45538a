/**
 * Every cloud's spec, for the config loader: one line per cloud (and one in registry.ts for its runtime).
 * Only specs are reachable from here, so loading a config never loads a cloud's runtime.
 */
import { awsSpec } from './aws/spec.js';
import { gcpSpec } from './gcp/spec.js';
import { azureSpec } from './azure/spec.js';
import type { CloudSpec, ProfileTypeSpec } from './spec-types.js';

export const CLOUD_SPECS: readonly CloudSpec[] = [awsSpec, gcpSpec, azureSpec];

const byType = new Map<string, { cloud: CloudSpec; spec: ProfileTypeSpec }>();
for (const cloud of CLOUD_SPECS) for (const spec of cloud.profileTypes) byType.set(spec.type, { cloud, spec });

export const PROFILE_TYPES: readonly string[] = [...byType.keys()];

/** The cloud and spec of a profile type; undefined for a type no cloud registers. */
export function profileType(type: string): { cloud: CloudSpec; spec: ProfileTypeSpec } | undefined {
  return byType.get(type);
}
