/**
 * AWS: three profile types (OIDC federation, IAM Roles Anywhere, role chaining) served through the ECS
 * container-credentials endpoint and IMDSv2. This file is the cheap half every command loads (the config loader reads it); providers
 * and endpoints come with runtime().
 */
import type { CloudSpec, ProfileTypeSpec } from '../spec-types.js';
import { checkAssumeRoleProfile, checkOidcProfile, checkRolesAnywhereProfile, resolveRolesAnywherePaths } from './config-checks.js';
import type { AwsAssumeRoleProfileConfig, AwsOidcProfileConfig, AwsRolesAnywhereProfileConfig } from './schema.js';

const oidc: ProfileTypeSpec<AwsOidcProfileConfig> = {
  type: 'aws-oidc',
  summary: 'OIDC federation: an ES256 JWT signed by the device key, exchanged at STS AssumeRoleWithWebIdentity.',
  usesOidc: true,
  check: checkOidcProfile,
  principal: (p) => p.role_arn,
};

const rolesAnywhere: ProfileTypeSpec<AwsRolesAnywhereProfileConfig> = {
  type: 'aws-rolesanywhere',
  summary: 'IAM Roles Anywhere: an X.509 certificate and its key (the device key by default). See docs/rolesanywhere.md.',
  check: checkRolesAnywhereProfile,
  resolvePaths: resolveRolesAnywherePaths,
  principal: (p) => p.role_arn,
};

const assumeRole: ProfileTypeSpec<AwsAssumeRoleProfileConfig> = {
  type: 'aws-assume-role',
  summary: "Role chaining: AssumeRole signed with another profile's credentials.",
  check: checkAssumeRoleProfile,
  sourceProfile: (p) => p.source_profile,
  principal: (p) => p.role_arn,
};

export const awsSpec: CloudSpec = {
  name: 'aws',
  title: 'AWS',
  profileTypes: [oidc, rolesAnywhere, assumeRole],
  requiresDefault: true,
};
