/**
 * The AWS half that runs: the three providers and the ECS and IMDS endpoints. Roles Anywhere's provider
 * brings the X.509 stack with it, so it is loaded by prepare() only for a config that has such a profile.
 */
import { defaultSubject } from '../../identity/jwt.js';
import { ProviderError } from '../../providers/types.js';
import type { CloudRuntime, ManagedProvider, ProfileBase, ProviderDeps } from '../types.js';
import { AwsAssumeRoleProvider } from './assume-role/provider.js';
import { ecsEndpoint } from './endpoints/ecs-endpoint.js';
import { imdsEndpoint } from './endpoints/imds-endpoint.js';
import type { AwsCredentials } from './credentials.js';
import { AwsOidcProvider } from './oidc/provider.js';
import { defaultSessionName } from './oidc/session-name.js';
import { sessionTagsOf } from './oidc/session-tags.js';
import type { AwsProfileConfig } from './schema.js';

/** The upstream tuning every AWS provider takes. */
export interface ProviderOptionsCommon {
  maxAttempts?: number;
  requestTimeoutMs?: number;
  maxBodyBytes?: number;
}

type RolesAnywhereFactory = typeof import('./rolesanywhere/create.js').createRolesAnywhereProvider;
let rolesAnywhere: RolesAnywhereFactory | undefined;

async function prepare(types: ReadonlySet<string>): Promise<void> {
  if (types.has('aws-rolesanywhere') && !rolesAnywhere) {
    rolesAnywhere = (await import('./rolesanywhere/create.js')).createRolesAnywhereProvider;
  }
}

function createProvider(name: string, profile: ProfileBase, deps: ProviderDeps): ManagedProvider {
  const p = profile as AwsProfileConfig;
  const { signer, tuning, config: cfg } = deps;
  const common: ProviderOptionsCommon = {
    ...(tuning.maxAttempts !== undefined ? { maxAttempts: tuning.maxAttempts } : {}),
    ...(tuning.requestTimeoutMs !== undefined ? { requestTimeoutMs: tuning.requestTimeoutMs } : {}),
    ...(tuning.maxBodyBytes !== undefined ? { maxBodyBytes: tuning.maxBodyBytes } : {}),
  };
  switch (p.type) {
    case 'aws-oidc': {
      const oidc = cfg.oidc;
      if (!oidc) throw new ProviderError('InvalidConfiguration', `profile ${name}: aws-oidc needs an [oidc] table`, false);
      return new AwsOidcProvider({
        signer,
        issuer: oidc.issuer,
        subject: oidc.subject ?? defaultSubject(signer),
        audience: oidc.audience,
        tokenLifetimeSeconds: oidc.token_lifetime_seconds,
        roleArn: p.role_arn,
        region: p.region,
        durationSeconds: p.duration_seconds,
        roleSessionName: p.role_session_name ?? defaultSessionName(signer.thumbprint),
        ...(p.sts_endpoint ? { stsEndpoint: p.sts_endpoint } : {}),
        ...(sessionTagsOf(oidc) ? { sessionTags: sessionTagsOf(oidc) } : {}),
        ...common,
        ...(tuning.now ? { now: tuning.now } : {}),
      });
    }
    case 'aws-rolesanywhere': {
      if (!rolesAnywhere) throw new Error(`profile ${name}: the Roles Anywhere module was not loaded (prepare the runtime first)`);
      return rolesAnywhere(name, p, deps, common);
    }
    case 'aws-assume-role':
      return new AwsAssumeRoleProvider({
        source: deps.source(p.source_profile) as () => Promise<AwsCredentials>,
        sourceName: p.source_profile,
        roleArn: p.role_arn,
        region: p.region,
        durationSeconds: p.duration_seconds,
        roleSessionName: p.role_session_name ?? defaultSessionName(signer.thumbprint),
        ...(p.sts_endpoint !== undefined ? { stsEndpoint: p.sts_endpoint } : {}),
        ...(p.external_id !== undefined ? { externalId: p.external_id } : {}),
        unattended: deps.sourceUnattended(p.source_profile),
        ...common,
        ...(tuning.now ? { now: tuning.now } : {}),
      });
  }
}

export const awsRuntime: CloudRuntime = { prepare, createProvider, endpoints: [ecsEndpoint, imdsEndpoint] };
