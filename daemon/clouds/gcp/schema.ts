/**
 * The `gcp-wif` profile: Google Cloud Workload Identity Federation with the device key's JWT. In the
 * style of config/schema.ts (a description and, where a pattern would mean little, an `expect` on every
 * field), so the generated config reference can include it as it is.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { allowExecutablesField, defaultField } from '../profile-fields.js';
import { CLOUD_PLATFORM_SCOPE } from './scopes.js';

/** A workload identity pool provider's full resource name (ids: 4-32 of a-z, 0-9 and -). */
export const WIF_AUDIENCE_PATTERN =
  '^//iam\\.googleapis\\.com/projects/[1-9][0-9]{0,19}/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$';

/**
 * Service account emails: user-managed (ID@PROJECT.iam.gserviceaccount.com, PROJECT possibly
 * domain-scoped as NAME.DOMAIN), Compute Engine's default (NUMBER-compute@developer...) and App Engine's
 * (PROJECT@appspot...). IDs and project ids are 6-30 characters; the bound is loose on purpose, Google
 * has the final word.
 */
export const SERVICE_ACCOUNT_PATTERN =
  '^[a-z0-9][a-z0-9-]{4,61}[a-z0-9]@(?:[a-z][a-z0-9.-]{4,61}[a-z0-9]\\.iam|developer|appspot)\\.gserviceaccount\\.com$';

/** Google's project id rules (6-30 of a-z, 0-9 and -, a letter first, no trailing -), with the legacy `domain:` prefix. */
export const PROJECT_ID_PATTERN = '^(?:[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$';

export const GcpWifProfile = Type.Object(
  {
    type: Type.Literal('gcp-wif', {
      description:
        "Google Cloud access tokens from Workload Identity Federation: a JWT signed by the device key, exchanged at Google STS (and, with service_account, for that service account's token).",
      expect: '"gcp-wif"',
    }),
    audience: Type.String({
      pattern: WIF_AUDIENCE_PATTERN,
      description:
        "The workload identity pool provider's full resource name: the STS `audience` and the JWT `aud` (the provider's default allowed audience).",
      expect:
        'a provider name like //iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/POOL/providers/PROVIDER (project number, not id)',
    }),
    service_account: Type.Optional(
      Type.String({
        pattern: SERVICE_ACCOUNT_PATTERN,
        description:
          "Service account to impersonate with generateAccessToken; the pool's principal needs roles/iam.workloadIdentityUser on it. Without it, the federated token itself is served (its principal needs the IAM roles directly).",
        expect: 'a service account email like deployer@my-project.iam.gserviceaccount.com',
      }),
    ),
    scopes: Type.Array(Type.String({ pattern: '^[\\x21-\\x7e]+$', maxLength: 256, expect: 'an OAuth scope without spaces' }), {
      default: [CLOUD_PLATFORM_SCOPE],
      minItems: 1,
      maxItems: 64,
      uniqueItems: true,
      description:
        "OAuth scopes of the access token. With service_account they are the service account token's scopes (the STS token then gets cloud-platform, which generateAccessToken needs).",
      expect: 'a list of OAuth scopes, e.g. ["https://www.googleapis.com/auth/cloud-platform"]',
    }),
    project_id: Type.Optional(
      Type.String({
        pattern: PROJECT_ID_PATTERN,
        description:
          "Project the clients bill and default to (GOOGLE_CLOUD_PROJECT, the metadata server's project-id). Offline, client libraries cannot look it up themselves.",
        expect: 'a project id: 6-30 lower-case letters, digits and hyphens, starting with a letter',
      }),
    ),
    lifetime_seconds: Type.Integer({
      default: 3600,
      minimum: 600,
      maximum: 43200,
      description:
        'Lifetime asked of generateAccessToken (with service_account). Google allows more than 3600 only where the organization policy constraints/iam.allowServiceAccountCredentialLifetimeExtension lists the service account. Federated tokens (no service_account) last what STS grants, one hour.',
    }),
    sts_endpoint: Type.String({
      default: 'https://sts.googleapis.com',
      pattern: '^https?://',
      description: 'Security Token Service base URL (Private Service Connect, local emulator). Plain http only to a loopback host.',
      expect: 'an http(s) URL',
    }),
    iamcredentials_endpoint: Type.String({
      default: 'https://iamcredentials.googleapis.com',
      pattern: '^https?://',
      description: 'IAM Service Account Credentials base URL, for generateAccessToken. Plain http only to a loopback host.',
      expect: 'an http(s) URL',
    }),
    metadata_server: Type.Boolean({
      default: false,
      description:
        'Also serve this profile through the GCE metadata server emulation, for tools that know only the metadata server. Its protocol carries no secret, so it is opt-in and guarded by the peer checks only. At most one profile.',
    }),
    allow_executables: allowExecutablesField(),
    default: defaultField(
      'The Google Cloud profile used where one is needed and none is named (`credport env` and `auth` without --profile, when no AWS profile is configured).',
    ),
  },
  { additionalProperties: false },
);

export type GcpWifProfileConfig = Static<typeof GcpWifProfile>;

/** Each profile type's schema, for clouds/schemas.ts. */
export const GCP_PROFILE_SCHEMAS: Readonly<Record<string, TSchema>> = { 'gcp-wif': GcpWifProfile };
