/** The config tables of the three AWS profile types. */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { allowExecutablesField, defaultField, PROFILE_NAME_PATTERN } from '../profile-fields.js';

const ROLE_ARN = '^arn:aws[a-z-]*:iam::\\d{12}:role/[\\w+=,.@/-]{1,512}$';
const REGION = '^[a-z]{2}(-[a-z]+)+-\\d{1,2}$';
const SESSION_NAME = '^[\\w+=,.@-]{2,64}$';

const TRUST_ANCHOR_ARN = '^arn:aws[a-z-]*:rolesanywhere:[a-z0-9-]+:\\d{12}:trust-anchor/[0-9a-f-]{36}$';
const RA_PROFILE_ARN = '^arn:aws[a-z-]*:rolesanywhere:[a-z0-9-]+:\\d{12}:profile/[0-9a-f-]{36}$';
const awsDefault = () => defaultField('Serve this profile at /v1/credentials and through IMDS.');

export const AwsOidcProfile = Type.Object(
  {
    type: Type.Literal('aws-oidc', {
      description: 'Credentials from STS AssumeRoleWithWebIdentity with a JWT signed by the device key.',
      expect: '"aws-oidc"',
    }),
    role_arn: Type.String({
      pattern: ROLE_ARN,
      description: 'Role to assume.',
      expect: 'an IAM role ARN like arn:aws:iam::111122223333:role/NAME',
    }),
    region: Type.String({
      pattern: REGION,
      default: 'us-east-1',
      description: 'STS region (regional endpoint).',
      expect: 'an AWS region like us-east-1',
    }),
    duration_seconds: Type.Integer({
      default: 3600,
      minimum: 900,
      maximum: 43200,
      description: "Requested session length; must not exceed the role's maximum session duration.",
    }),
    sts_endpoint: Type.Optional(
      Type.String({ minLength: 1, description: 'STS endpoint override (VPC endpoint, FIPS, local emulator).', expect: 'an http(s) URL' }),
    ),
    role_session_name: Type.Optional(
      Type.String({
        pattern: SESSION_NAME,
        description: 'RoleSessionName. Default: `credport-<host>-<key thumbprint prefix>`, which identifies the device in CloudTrail.',
        expect: '2-64 characters of letters, digits and +=,.@_-',
      }),
    ),
    allow_executables: allowExecutablesField(),
    default: awsDefault(),
  },
  { additionalProperties: false },
);

const DURATION = '^[1-9]\\d{0,5}[mhd]$';

/** `[profiles.X.renewal]`: how an aws-rolesanywhere profile renews its own certificate (docs/rolesanywhere.md). */
export const RolesAnywhereRenewal = Type.Object(
  {
    method: Type.Union([Type.Literal('aws-private-ca'), Type.Literal('command'), Type.Literal('credport-ca')], {
      description:
        'Who issues the renewed certificate: `"aws-private-ca"` (ACM Private CA IssueCertificate + GetCertificate, signed with this profile\'s own credentials), `"command"` (a program given the CSR on stdin that prints the chain on stdout: step-ca, Vault, cfssl, a script) or `"credport-ca"` (the built-in CA directory).',
      expect: '"aws-private-ca", "command" or "credport-ca"',
    }),
    at: Type.Optional(
      Type.Number({
        minimum: 0.1,
        maximum: 0.95,
        description: "Fraction of the certificate's lifetime after which renewal starts. Default 2/3.",
        expect: 'a fraction from 0.1 to 0.95',
      }),
    ),
    trust_anchor_certificate: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM file of the CA certificate(s) the Roles Anywhere trust anchor holds: a renewed certificate must chain to one of them. Required for `aws-private-ca` and `command`; default for `credport-ca`: ca.pem in `ca_dir`.',
      }),
    ),
    validity: Type.Optional(
      Type.String({
        pattern: DURATION,
        description:
          'Lifetime asked for the renewed certificate (`aws-private-ca`, `credport-ca`): minutes, hours or days, e.g. `"30d"`, `"12h"`. Default: the lifetime of the current certificate.',
        expect: 'a number followed by m, h or d, like "30d"',
      }),
    ),
    certificate_authority_arn: Type.Optional(
      Type.String({
        pattern: '^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\\d{12}:certificate-authority/[0-9a-f-]{36}$',
        description:
          '`aws-private-ca`: the private CA that issues the certificate; the role needs acm-pca:IssueCertificate and acm-pca:GetCertificate on it.',
        expect: 'an ACM Private CA ARN',
      }),
    ),
    signing_algorithm: Type.Optional(
      Type.Union(
        ['SHA256WITHECDSA', 'SHA384WITHECDSA', 'SHA512WITHECDSA', 'SHA256WITHRSA', 'SHA384WITHRSA', 'SHA512WITHRSA'].map((a) =>
          Type.Literal(a),
        ),
        {
          description: "`aws-private-ca`: the algorithm the CA signs with; it must suit the CA's key. Default SHA256WITHECDSA.",
          expect: 'an ACM PCA signing algorithm like SHA256WITHECDSA',
        },
      ),
    ),
    private_ca_endpoint: Type.Optional(
      Type.String({
        minLength: 1,
        description: '`aws-private-ca`: endpoint override (VPC endpoint, local emulator).',
        expect: 'an http(s) URL',
      }),
    ),
    command: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description:
          '`command`: the program and its arguments (argv, no shell), run with an empty environment but PATH; the CSR PEM on stdin, the certificate chain PEM (leaf first) expected on stdout.',
        expect: 'an array of strings like ["step", "ca", "sign", ...]',
      }),
    ),
    timeout_seconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 600, description: '`command`: killed after this long. Default 60.' }),
    ),
    ca_dir: Type.Optional(Type.String({ minLength: 1, description: "`credport-ca`: the CA directory ('credport ca init')." })),
  },
  {
    additionalProperties: false,
    description:
      'Renew the certificate automatically, with the same key, before it expires (a table: see below). Not with `private_key` files encrypted by a passphrase from the environment only.',
  },
);

export const AwsRolesAnywhereProfile = Type.Object(
  {
    type: Type.Literal('aws-rolesanywhere', {
      description: 'Credentials from IAM Roles Anywhere CreateSession, signed (SigV4-X509) with the key of an X.509 certificate.',
      expect: '"aws-rolesanywhere"',
    }),
    certificate: Type.String({
      minLength: 1,
      description:
        'PEM file of the device certificate (re-read when it changes on disk), or exactly `"token"`: the X.509 certificate stored on the PKCS#11 token next to the [key] backend\'s key (same CKA_ID, else same label), read from the token before every CreateSession (docs/rolesanywhere.md). `"token"` needs `[key] backend = "pkcs11"` and no `private_key`; a file named token is `"./token"`.',
    }),
    chain: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM file of the intermediate CA certificates, in order, leaf excluded. Without it, with `certificate = "token"`: the intermediates among the certificates read with the leaf from the token.',
      }),
    ),
    private_key: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Key file of the certificate (PKCS#1, SEC1, PKCS#8, encrypted PKCS#8; mode 0600). Default: the [key] backend's device key.",
      }),
    ),
    private_key_passphrase_file: Type.Optional(
      Type.String({ minLength: 1, description: 'File (0600) holding the passphrase of an encrypted private_key.' }),
    ),
    private_key_passphrase_env: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        description: 'Environment variable holding the passphrase of an encrypted private_key.',
        expect: 'an environment variable name',
      }),
    ),
    trust_anchor_arn: Type.String({
      pattern: TRUST_ANCHOR_ARN,
      description: 'Trust anchor; its region is where CreateSession is called.',
      expect: 'a Roles Anywhere trust anchor ARN',
    }),
    profile_arn: Type.String({
      pattern: RA_PROFILE_ARN,
      description: 'Roles Anywhere profile (same region as the trust anchor).',
      expect: 'a Roles Anywhere profile ARN',
    }),
    role_arn: Type.String({
      pattern: ROLE_ARN,
      description: 'Role to assume; the profile must list it.',
      expect: 'an IAM role ARN like arn:aws:iam::111122223333:role/NAME',
    }),
    duration_seconds: Type.Integer({
      default: 3600,
      minimum: 900,
      maximum: 43200,
      description: 'Requested session length; the Roles Anywhere profile caps it.',
    }),
    role_session_name: Type.Optional(
      Type.String({
        pattern: SESSION_NAME,
        description: 'Honoured only when the Roles Anywhere profile accepts custom session names.',
        expect: '2-64 characters of letters, digits and +=,.@_-',
      }),
    ),
    endpoint: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'CreateSession endpoint override (FIPS, VPC endpoint, local emulator).',
        expect: 'an http(s) URL',
      }),
    ),
    renewal: Type.Optional(RolesAnywhereRenewal),
    allow_executables: allowExecutablesField(),
    default: awsDefault(),
  },
  { additionalProperties: false },
);

export const AwsAssumeRoleProfile = Type.Object(
  {
    type: Type.Literal('aws-assume-role', {
      description: "Credentials from STS AssumeRole, signed with another profile's credentials (role chaining, e.g. into other accounts).",
      expect: '"aws-assume-role"',
    }),
    source_profile: Type.String({
      pattern: PROFILE_NAME_PATTERN,
      description: 'The profile whose credentials sign the AssumeRole call; refreshed first.',
    }),
    role_arn: Type.String({
      pattern: ROLE_ARN,
      description: 'Role to assume; its trust policy must allow the source role.',
      expect: 'an IAM role ARN like arn:aws:iam::111122223333:role/NAME',
    }),
    region: Type.String({ pattern: REGION, default: 'us-east-1', description: 'STS region.', expect: 'an AWS region like us-east-1' }),
    duration_seconds: Type.Integer({
      default: 3600,
      minimum: 900,
      maximum: 3600,
      description: 'Session length; AWS caps chained sessions at one hour.',
    }),
    role_session_name: Type.Optional(
      Type.String({
        pattern: SESSION_NAME,
        description: 'RoleSessionName. Default: as for aws-oidc.',
        expect: '2-64 characters of letters, digits and +=,.@_-',
      }),
    ),
    external_id: Type.Optional(Type.String({ minLength: 2, maxLength: 1224, description: "ExternalId the role's trust policy requires." })),
    sts_endpoint: Type.Optional(Type.String({ minLength: 1, description: 'STS endpoint override.', expect: 'an http(s) URL' })),
    allow_executables: allowExecutablesField(),
    default: awsDefault(),
  },
  { additionalProperties: false },
);

export type AwsOidcProfileConfig = Static<typeof AwsOidcProfile>;
export type AwsRolesAnywhereProfileConfig = Static<typeof AwsRolesAnywhereProfile>;
export type AwsAssumeRoleProfileConfig = Static<typeof AwsAssumeRoleProfile>;
export type RolesAnywhereRenewalConfig = Static<typeof RolesAnywhereRenewal>;
export type AwsProfileConfig = AwsOidcProfileConfig | AwsRolesAnywhereProfileConfig | AwsAssumeRoleProfileConfig;

/** Each profile type's schema, for clouds/schemas.ts. */
export const AWS_PROFILE_SCHEMAS: Readonly<Record<string, TSchema>> = {
  'aws-oidc': AwsOidcProfile,
  'aws-rolesanywhere': AwsRolesAnywhereProfile,
  'aws-assume-role': AwsAssumeRoleProfile,
};
