/**
 * Every cloud's profile schemas, by profile type: one line per cloud, beside specs.ts and registry.ts.
 * Kept apart from the specs so that what every command loads holds no schema: the schemas are read
 * by the config schema (config/schema.ts), the docs generator and the build-time validator generator
 * (scripts/gen-validators.ts), never by a command.
 */
import type { TSchema } from '@sinclair/typebox';
import { AWS_PROFILE_SCHEMAS } from './aws/schema.js';
import { GCP_PROFILE_SCHEMAS } from './gcp/schema.js';
import { AZURE_PROFILE_SCHEMAS } from './azure/schema.js';

export const CLOUD_PROFILE_SCHEMAS: Readonly<Record<string, TSchema>> = {
  ...AWS_PROFILE_SCHEMAS,
  ...GCP_PROFILE_SCHEMAS,
  ...AZURE_PROFILE_SCHEMAS,
};
