/**
 * The config file's schema: the single source for validation, for the static
 * types the daemon reads, and for docs/config-reference.md (generated from it
 * by scripts/gen-config-docs.ts and checked by a test).
 *
 * `expect` is a human phrase used in error messages where a regex or a bound
 * would mean little to a user.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { PROFILE_NAME_PATTERN } from '../clouds/profile-fields.js';
import { CLOUD_PROFILE_SCHEMAS } from '../clouds/schemas.js';
import { CLOUD_SPECS, PROFILE_TYPES } from '../clouds/specs.js';
import type { ProfileBase } from '../clouds/spec-types.js';

const userList = (description: string) =>
  Type.Array(
    Type.Union([Type.Integer({ minimum: 0, maximum: 4294967294 }), Type.String({ pattern: '^[a-z_][a-z0-9_.-]{0,31}\\$?$' })], {
      expect: 'a uid or a user name',
    }),
    { default: [], maxItems: 256, uniqueItems: true, description, expect: 'a list of uids or user names, e.g. [1001, "deploy"]' },
  );

const DaemonSection = Type.Object(
  {
    listen: Type.String({
      default: '127.0.0.1:80',
      description:
        'Address and port to listen on. Loopback only: 127.0.0.1, [::1], or localhost (both). Port 80 lets `curl localhost/health` work; see docs/setup-linux.md for binding it without root.',
      expect: 'HOST:PORT with a loopback host, e.g. "127.0.0.1:80", "[::1]:8080" or "localhost:80"',
    }),
    allow_uids: userList(
      "Users besides the daemon's own whose processes may get credentials (ECS, IMDS and every credential endpoint). Every other local user is refused with 403, even with the right token. Names are looked up when the config is loaded.",
    ),
    monitor_uids: userList(
      "Users that may read /metrics and the full /health (profile names, role ARNs, errors) but get no credentials, e.g. a monitoring agent. Anyone on loopback gets /health's overall status.",
    ),
    token_file: Type.String({
      default: '$XDG_STATE_HOME/credport/token',
      description:
        'File holding the bearer token the ECS endpoint requires (created 0600 on first start, 256 random bits, no trailing newline). Point AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at it.',
      minLength: 1,
    }),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)),
      {
        default: 'info',
        description: 'Log level. Secrets are redacted at every level.',
        expect: 'one of fatal, error, warn, info, debug, trace',
      },
    ),
    log_file: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Write JSON logs to this file (0600, rotated by size) instead of stdout; this is the file being written. Older files sit beside it as NAME.N.log, the highest N the most recent. `credport logs` reads them. A failed write (full disk) loses those lines only: logging resumes by itself, and stderr gets at most one complaint a minute. Pretty output is used only on a terminal.',
      }),
    ),
    log_max_size: Type.String({
      default: '10m',
      pattern: '^[1-9][0-9]*[kmg]$',
      description: 'Rotate the log file when it reaches this size.',
      expect: 'a size like "512k", "10m" or "1g"',
    }),
    log_files: Type.Integer({ default: 5, minimum: 1, maximum: 100, description: 'Rotated log files kept besides the current one.' }),
    certificate_warning_days: Type.Integer({
      default: 30,
      minimum: 1,
      maximum: 365,
      description: '/health and `credport status` warn when a Roles Anywhere certificate expires within this many days.',
    }),
    lock_file: Type.String({
      default: '$XDG_STATE_HOME/credport/daemon.pid',
      minLength: 1,
      description:
        'Names the running daemon (pid, process start time, executable): a second `credport serve` with the same lock file refuses to start, and `credport reload` signals only a process proven to be that daemon. A lock whose pid now belongs to another program is stale and taken over. The daemon also writes NAME.runtime.json beside it (its real listen address and a client view of the config it loaded, with the digest of the exact bytes; 0600, removed at exit): `status`, `reload`, `auth` and `env` read it, and answer from the view without parsing the config while its bytes are unchanged.',
    }),
    audit_file: Type.String({
      default: '$XDG_STATE_HOME/credport/audit.log',
      minLength: 1,
      description:
        'Audit log: one JSON line per credential handed out (time, profile, endpoint, access key id, expiration, and the receiving process: uid, pid, executable, argv[0]; never a secret). 0600 in a private directory, rotated by size to audit.log.1, audit.log.2, ...; repeated fetches by one process are summarised. `credport audit` reads it. "off" disables it.',
    }),
    audit_max_size: Type.String({
      default: '10m',
      pattern: '^[1-9][0-9]*[kmg]$',
      description: 'Rotate the audit log when it would grow beyond this size.',
      expect: 'a size like "512k", "10m" or "1g"',
    }),
    audit_files: Type.Integer({ default: 5, minimum: 1, maximum: 100, description: 'Rotated audit files kept besides the current one.' }),
  },
  { additionalProperties: false, default: {} },
);

const BACKENDS = ['file', 'pkcs11', 'secure-enclave'] as const;
const backendField = <B extends (typeof BACKENDS)[number]>(b: B, what: string) =>
  Type.Literal(b, { description: what, expect: BACKENDS.map((x) => `"${x}"`).join(', ') });

/** Validated first, to pick the backend's own schema below (so errors speak of one backend only). */
export const KeySelector = Type.Object(
  {
    backend: Type.Union(
      BACKENDS.map((b) => Type.Literal(b)),
      { default: 'file', expect: `one of ${BACKENDS.map((x) => `"${x}"`).join(', ')}` },
    ),
  },
  { additionalProperties: true, default: {} },
);

export const FileKeySection = Type.Object(
  {
    backend: backendField('file', 'A P-256 PKCS#8 PEM on disk, mode 0600: for machines with no hardware token.'),
    path: Type.String({
      default: '$XDG_STATE_HOME/credport/device-key.pem',
      minLength: 1,
      description: 'Key file; created by `credport init`; refused if group- or world-readable.',
    }),
  },
  { additionalProperties: false },
);

export const Pkcs11KeySection = Type.Object(
  {
    backend: backendField(
      'pkcs11',
      'A non-extractable P-256 key on a PKCS#11 token: YubiKey (ykcs11, opensc-pkcs11), HSM, TPM (tpm2-pkcs11), SoftHSM2.',
    ),
    module: Type.String({ minLength: 1, description: 'Path of the PKCS#11 module (shared library) to load.' }),
    token_label: Type.Optional(
      Type.String({ minLength: 1, maxLength: 32, description: 'Label of the token holding the key (or give `uri`).' }),
    ),
    uri: Type.Optional(
      Type.String({
        pattern: '^pkcs11:',
        description: 'RFC 7512 URI naming the token and/or key, e.g. `pkcs11:token=credport;object=device`. A PIN in the URI is refused.',
        expect: 'a pkcs11: URI',
      }),
    ),
    key_label: Type.Optional(
      Type.String({ minLength: 1, description: 'CKA_LABEL of the key (default "device" when neither a label nor an id is given).' }),
    ),
    key_id: Type.Optional(
      Type.String({ pattern: '^([0-9a-fA-F]{2})+$', description: 'CKA_ID of the key, hex.', expect: 'hex bytes, e.g. "0a1b"' }),
    ),
    pin_file: Type.Optional(
      Type.String({ minLength: 1, description: 'File holding the user PIN (mode 0600; one trailing newline is ignored).' }),
    ),
    pin_env: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        description: 'Environment variable holding the user PIN. PINs are never taken from the command line.',
        expect: 'an environment variable name',
      }),
    ),
  },
  { additionalProperties: false },
);

export const SecureEnclaveKeySection = Type.Object(
  {
    backend: backendField(
      'secure-enclave',
      'A P-256 key created inside the macOS Secure Enclave; it never leaves the chip. Kept outside the keychain, so any `node` can use it.',
    ),
    path: Type.String({
      default: '$XDG_STATE_HOME/credport/secure-enclave-key.json',
      minLength: 1,
      description:
        "Key file: the key's token object id (usable only by this Mac's Secure Enclave) and public key; created by `credport init`, mode 0600.",
    }),
    user_presence: Type.Boolean({
      default: false,
      description:
        'Require Touch ID / password for every signature. Such profiles refresh only on demand (nobody is there to touch the sensor at 3 a.m.). Fixed when the key is created.',
    }),
  },
  { additionalProperties: false },
);

export const KEY_SECTIONS = { file: FileKeySection, pkcs11: Pkcs11KeySection, 'secure-enclave': SecureEnclaveKeySection } as const;

/** AWS session tag keys and values: letters, digits, spaces and _ . : / = + - @ (IAM's tag alphabet). */
const SESSION_TAG_KEY = '^[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]{1,128}$';
const SESSION_TAG_VALUE = '^[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$';

const RSA_BACKENDS = ['file', 'pkcs11'] as const;

/** [rsa_key]: validated first like [key], to pick the backend's own schema. */
export const RsaKeySelector = Type.Object(
  {
    backend: Type.Union(
      RSA_BACKENDS.map((b) => Type.Literal(b)),
      { default: 'file', expect: `one of ${RSA_BACKENDS.map((x) => `"${x}"`).join(', ')} (the Secure Enclave holds P-256 keys only)` },
    ),
  },
  { additionalProperties: true },
);

export const RsaFileKeySection = Type.Object(
  {
    backend: Type.Literal('file', {
      description: 'An RSA PKCS#8 PEM on disk, mode 0600 (`credport init --rsa-key` creates RSA-2048).',
      expect: RSA_BACKENDS.map((x) => `"${x}"`).join(', '),
    }),
    path: Type.String({
      default: '$XDG_STATE_HOME/credport/device-rsa-key.pem',
      minLength: 1,
      description: 'Key file; created by `credport init --rsa-key`; refused if group- or world-readable or not RSA of 2048 bits or more.',
    }),
  },
  { additionalProperties: false },
);

/**
 * The [rsa_key] table's backends: the pkcs11 table is [key]'s, naming an RSA key on the token (default
 * label "device-rsa").
 */
export const RSA_KEY_SECTIONS = { file: RsaFileKeySection, pkcs11: Pkcs11KeySection } as const;

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
      description: "JWT `aud`; must be in the IAM OIDC provider's client-id list.",
    }),
    token_lifetime_seconds: Type.Integer({
      default: 300,
      minimum: 60,
      maximum: 3600,
      description: 'Lifetime of each JWT; it is used once, immediately, so short is better.',
    }),
    principal_tags: Type.Optional(
      Type.Record(Type.String({ pattern: SESSION_TAG_KEY }), Type.String({ minLength: 0, maxLength: 256, pattern: SESSION_TAG_VALUE }), {
        maxProperties: 50,
        additionalProperties: false,
        description:
          'AWS session tags the JWT carries in its `https://aws.amazon.com/tags` claim (aws-oidc only), e.g. `{ team = "edge" }`. A role\'s trust policy can then admit a whole fleet by tag (`aws:RequestTag/team`) instead of one `sub` per device, and its permissions can test `aws:PrincipalTag/team`. The role must allow `sts:TagSession`.',
        expect: 'a table of tag keys (1-128 characters of letters, digits, spaces and _.:/=+-@) to values of at most 256 such characters',
      }),
    ),
    transitive_tag_keys: Type.Optional(
      Type.Array(Type.String({ pattern: SESSION_TAG_KEY }), {
        maxItems: 50,
        uniqueItems: true,
        description: 'Keys of `principal_tags` that persist into roles this session assumes (role chaining, aws-assume-role).',
        expect: 'a list of keys of principal_tags',
      }),
    ),
    publish_bucket: Type.Optional(
      Type.String({
        pattern: '^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\\s]*)?$',
        description:
          'Where the issuer documents are published: the S3 bucket (and optional prefix) behind the issuer URL, as `s3://BUCKET/PREFIX`. Written by `credport setup aws --write-config`; read by `credport oidc publish`.',
        expect: 's3://BUCKET or s3://BUCKET/PREFIX',
      }),
    ),
    publish_distribution_id: Type.Optional(
      Type.String({
        pattern: '^[A-Z0-9]{1,32}$',
        description:
          'The CloudFront distribution serving the issuer, whose cached documents are invalidated after a publish. Written by `credport setup aws --write-config`.',
        expect: 'a CloudFront distribution id like E2ABCDEFGHIJKL',
      }),
    ),
  },
  { additionalProperties: false },
);

const RefreshSection = Type.Object(
  {
    fraction: Type.Number({
      default: 0.5,
      exclusiveMinimum: 0,
      maximum: 0.9,
      description:
        "Refresh when this fraction of a credential's lifetime has passed (before jitter). 0.5 of one hour leaves about 30 minutes, well above every SDK's own refresh window.",
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
        "A request finding less than this left (or less than half the credential's lifetime, if smaller) waits for a refresh, at most 1 s (what SDK clients wait); if the refresh fails or takes longer, the cached credentials are served while still valid.",
    }),
    expiry_margin_seconds: Type.Integer({
      default: 60,
      minimum: 1,
      maximum: 3600,
      description: 'Credentials with less than this left count as expired: never served; 503 instead.',
    }),
    retry_base_seconds: Type.Number({
      default: 2,
      exclusiveMinimum: 0,
      maximum: 3600,
      description: 'First retry delay after a failed refresh; doubles per failure, with equal jitter (between half and all of the delay).',
    }),
    retry_max_seconds: Type.Number({ default: 300, exclusiveMinimum: 0, maximum: 86400, description: 'Upper bound of the retry delay.' }),
  },
  { additionalProperties: false, default: {} },
);

/** Each registered profile type's own schema, validated after the selector below picked it. */
export const PROFILE_SECTIONS: Readonly<Record<string, TSchema>> = Object.fromEntries(PROFILE_TYPES.map((t) => [t, profileSchema(t)]));

function profileSchema(type: string): TSchema {
  const schema = CLOUD_PROFILE_SCHEMAS[type];
  if (!schema) throw new Error(`profile type ${type} has a spec but no schema in clouds/schemas.ts`);
  return schema;
}

/** Validated first, to pick the profile type's own schema (as for [key]). */
const ProfileSelector = Type.Object(
  {
    type: Type.Union(
      PROFILE_TYPES.map((p) => Type.Literal(p)),
      { expect: `one of ${PROFILE_TYPES.map((x) => `"${x}"`).join(', ')}` },
    ),
  },
  { additionalProperties: true },
);

export const ConfigSchema = Type.Object(
  {
    daemon: DaemonSection,
    key: KeySelector,
    rsa_key: Type.Optional(RsaKeySelector),
    oidc: Type.Optional(OidcSection),
    refresh: RefreshSection,
    profiles: Type.Record(Type.String({ pattern: PROFILE_NAME_PATTERN }), ProfileSelector, {
      minProperties: 1,
      additionalProperties: false,
      description: 'One table per profile: [profiles.NAME]. NAME is used in URLs (letters, digits, `_ . -`).',
      expect: 'at least one [profiles.NAME] table',
    }),
  },
  { additionalProperties: false },
);

export type Config = Omit<Static<typeof ConfigSchema>, 'key' | 'rsa_key' | 'profiles'> & {
  key: KeyConfig;
  rsa_key?: RsaKeyConfig;
  profiles: Record<string, ProfileConfig>;
};
/** A profile table of any registered type; each cloud narrows it to its own types. */
export type ProfileConfig = ProfileBase;
export type DaemonConfig = Static<typeof DaemonSection>;
export type FileKeyConfig = Static<typeof FileKeySection>;
export type Pkcs11KeyConfig = Static<typeof Pkcs11KeySection>;
export type SecureEnclaveKeyConfig = Static<typeof SecureEnclaveKeySection>;
export type KeyConfig = FileKeyConfig | Pkcs11KeyConfig | SecureEnclaveKeyConfig;
export type RsaKeyConfig = Static<typeof RsaFileKeySection> | Pkcs11KeyConfig;
export type OidcConfig = Static<typeof OidcSection>;
export type RefreshConfig = Static<typeof RefreshSection>;

/** Sections in documentation order, for the generated reference. */
export const CONFIG_SECTIONS: ReadonlyArray<{ table: string; schema: TSchema; summary: string }> = [
  { table: 'daemon', schema: DaemonSection, summary: 'The local server.' },
  { table: 'key` with `backend = "file"', schema: FileKeySection, summary: 'The device key in a file (the default).' },
  {
    table: 'key` with `backend = "pkcs11"',
    schema: Pkcs11KeySection,
    summary:
      "The device key on a PKCS#11 token. Give the token by `token_label` or `uri`, the key by `key_label`, `key_id` or the URI's `object`/`id`, and the PIN by exactly one of `pin_file` and `pin_env`. See docs/key-backends.md.",
  },
  {
    table: 'key` with `backend = "secure-enclave"',
    schema: SecureEnclaveKeySection,
    summary: 'The device key in the macOS Secure Enclave. See docs/key-backends.md.',
  },
  {
    table: 'rsa_key` with `backend = "file"',
    schema: RsaFileKeySection,
    summary:
      'Optional: an RSA key beside the device key, for clouds that accept only RS256 client assertions (Microsoft Entra ID, `azure-federated` profiles with `assertion = "device"`). `credport oidc export` publishes it with the device key. See docs/setup-azure.md.',
  },
  {
    table: 'rsa_key` with `backend = "pkcs11"',
    schema: Pkcs11KeySection,
    summary:
      'The RSA key on a PKCS#11 token, with the fields of `[key]` with `backend = "pkcs11"`; the key is found by `key_label` (default "device-rsa"), `key_id` or the URI. Create it on the token first, e.g. `pkcs11-tool --keypairgen --key-type rsa:2048 --label device-rsa`.',
  },
  {
    table: 'oidc',
    schema: OidcSection,
    summary: `The OIDC identity the key signs (required by ${CLOUD_SPECS.flatMap((c) => c.profileTypes.filter((t) => t.usesOidc).map((t) => t.type)).join(' and ')} profiles).`,
  },
  { table: 'refresh', schema: RefreshSection, summary: 'When credentials are refreshed and how failures are retried.' },
  ...CLOUD_SPECS.flatMap((c) =>
    c.profileTypes.map((t) => ({ table: `profiles.NAME\` with \`type = "${t.type}"`, schema: profileSchema(t.type), summary: t.summary })),
  ),
];
