/**
 * The config file's schema: the single source for validation, for the static
 * types the daemon reads, and for docs/config-reference.md (generated from it
 * by scripts/gen-config-docs.ts and checked by a test).
 *
 * `expect` is a human phrase used in error messages where a regex or a bound
 * would mean little to a user.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const ROLE_ARN = '^arn:aws[a-z-]*:iam::\\d{12}:role/[\\w+=,.@/-]{1,512}$';
const REGION = '^[a-z]{2}(-[a-z]+)+-\\d{1,2}$';
const SESSION_NAME = '^[\\w+=,.@-]{2,64}$';

export const PROFILE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

const DaemonSection = Type.Object(
  {
    listen: Type.String({
      default: '127.0.0.1:80',
      description:
        'Address and port to listen on. Loopback only: 127.0.0.1, [::1], or localhost (both). Port 80 lets `curl localhost/health` work; see docs/setup-linux.md for binding it without root.',
      expect: 'HOST:PORT with a loopback host, e.g. "127.0.0.1:80", "[::1]:8080" or "localhost:80"',
    }),
    token_file: Type.String({
      default: '$XDG_STATE_HOME/credport/token',
      description:
        'File holding the bearer token the ECS endpoint requires (created 0600 on first start, 256 random bits, no trailing newline). Point AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at it.',
      minLength: 1,
    }),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'Log level. Secrets are redacted at every level.', expect: 'one of fatal, error, warn, info, debug, trace' },
    ),
    log_file: Type.Optional(
      Type.String({ minLength: 1, description: 'Write JSON logs to this file instead of stdout (pretty output is used only on a terminal).' }),
    ),
  },
  { additionalProperties: false, default: {} },
);

const KeySection = Type.Object(
  {
    backend: Type.Literal('file', {
      default: 'file',
      description: 'Where the device key lives. `file`: a P-256 PKCS#8 PEM, mode 0600. Hardware backends come with the enclave addon.',
      expect: '"file"',
    }),
    path: Type.String({
      default: '$XDG_STATE_HOME/credport/device-key.pem',
      minLength: 1,
      description: 'Key file for the `file` backend; created by `credport init`; refused if group- or world-readable.',
    }),
  },
  { additionalProperties: false, default: {} },
);

const OidcSection = Type.Object(
  {
    issuer: Type.String({
      description:
        'Issuer URL the JWTs name in `iss`, where the discovery document and JWKS are published (https; plain http only for loopback test issuers).',
      expect: 'an https:// URL without query or fragment',
      minLength: 1,
    }),
    subject: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'JWT `sub`. Default: `device:` followed by the key thumbprint.' }),
    ),
    audience: Type.String({
      default: 'sts.amazonaws.com',
      minLength: 1,
      description: 'JWT `aud`; must be in the IAM OIDC provider\'s client-id list.',
    }),
    token_lifetime_seconds: Type.Integer({
      default: 300,
      minimum: 60,
      maximum: 3600,
      description: 'Lifetime of each JWT; it is used once, immediately, so short is better.',
    }),
  },
  { additionalProperties: false },
);

const RefreshSection = Type.Object(
  {
    fraction: Type.Number({
      default: 0.5,
      exclusiveMinimum: 0,
      maximum: 0.9,
      description: 'Refresh when this fraction of a credential\'s lifetime has passed (before jitter). 0.5 of one hour leaves about 30 minutes, well above every SDK\'s own refresh window.',
    }),
    jitter: Type.Number({
      default: 0.1,
      minimum: 0,
      maximum: 0.5,
      description: 'Random spread, as a fraction of the lifetime, taken off the refresh time so that a fleet does not refresh in step.',
    }),
    min_remaining_seconds: Type.Integer({
      default: 900,
      minimum: 0,
      maximum: 43200,
      description:
        'A request finding less than this left (or less than half the credential\'s lifetime, if smaller) waits for a refresh; if the refresh fails, the cached credentials are served while still valid.',
    }),
    expiry_margin_seconds: Type.Integer({
      default: 60,
      minimum: 1,
      maximum: 3600,
      description: 'Credentials with less than this left count as expired: never served; 503 instead.',
    }),
    retry_base_seconds: Type.Number({ default: 2, exclusiveMinimum: 0, maximum: 3600, description: 'First retry delay after a failed refresh; doubles per failure, with full jitter.' }),
    retry_max_seconds: Type.Number({ default: 300, exclusiveMinimum: 0, maximum: 86400, description: 'Upper bound of the retry delay.' }),
  },
  { additionalProperties: false, default: {} },
);

const AwsOidcProfile = Type.Object(
  {
    type: Type.Literal('aws-oidc', { description: 'Credentials from STS AssumeRoleWithWebIdentity with a JWT signed by the device key.', expect: '"aws-oidc"' }),
    role_arn: Type.String({ pattern: ROLE_ARN, description: 'Role to assume.', expect: 'an IAM role ARN like arn:aws:iam::111122223333:role/NAME' }),
    region: Type.String({ pattern: REGION, default: 'us-east-1', description: 'STS region (regional endpoint).', expect: 'an AWS region like us-east-1' }),
    duration_seconds: Type.Integer({ default: 3600, minimum: 900, maximum: 43200, description: 'Requested session length; must not exceed the role\'s maximum session duration.' }),
    sts_endpoint: Type.Optional(
      Type.String({ minLength: 1, description: 'STS endpoint override (VPC endpoint, FIPS, local emulator).', expect: 'an http(s) URL' }),
    ),
    role_session_name: Type.Optional(
      Type.String({ pattern: SESSION_NAME, description: 'RoleSessionName. Default: `credport-<host>-<key thumbprint prefix>`, which identifies the device in CloudTrail.', expect: '2-64 characters of letters, digits and +=,.@_-' }),
    ),
    default: Type.Optional(Type.Boolean({ description: 'Serve this profile at /v1/credentials and through IMDS. Default: the profile named `default`, or the only profile.' })),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    daemon: DaemonSection,
    key: KeySection,
    oidc: Type.Optional(OidcSection),
    refresh: RefreshSection,
    profiles: Type.Record(Type.String({ pattern: PROFILE_NAME_PATTERN }), AwsOidcProfile, {
      minProperties: 1,
      additionalProperties: false,
      description: 'One table per profile: [profiles.NAME]. NAME is used in URLs (letters, digits, `_ . -`).',
      expect: 'at least one [profiles.NAME] table',
    }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type DaemonConfig = Static<typeof DaemonSection>;
export type KeyConfig = Static<typeof KeySection>;
export type OidcConfig = Static<typeof OidcSection>;
export type RefreshConfig = Static<typeof RefreshSection>;
export type AwsOidcProfileConfig = Static<typeof AwsOidcProfile>;
export type ProfileConfig = AwsOidcProfileConfig;

/** Sections in documentation order, for the generated reference. */
export const CONFIG_SECTIONS: ReadonlyArray<{ table: string; schema: TSchema; summary: string }> = [
  { table: 'daemon', schema: DaemonSection, summary: 'The local server.' },
  { table: 'key', schema: KeySection, summary: 'The device key.' },
  { table: 'oidc', schema: OidcSection, summary: 'The OIDC identity the key signs (required by aws-oidc profiles).' },
  { table: 'refresh', schema: RefreshSection, summary: 'When credentials are refreshed and how failures are retried.' },
  { table: 'profiles.NAME', schema: AwsOidcProfile, summary: 'A profile of type aws-oidc.' },
];
