/**
 * The half of a cloud every command loads: its profile types, for the config loader. Nothing here
 * imports the config, the daemon or the CLI, so the config loader can read every cloud's spec without
 * reaching any cloud's runtime. The profile tables' schemas are not here (clouds/schemas.ts): they are
 * compiled into validators at build time, so a command never loads the schema library.
 */
/** What every profile table has, whatever its type. */
export interface ProfileBase {
  type: string;
  /** The profile this cloud's unnamed endpoints serve (AWS: /v1/credentials and IMDS). */
  default?: boolean;
  allow_executables?: string[];
}

/** What a profile's config checks may look at besides the profile itself. */
export interface ConfigView {
  profiles: Readonly<Record<string, ProfileBase>>;
  keyBackend: string;
  /** Whether an [rsa_key] table is configured (RS256 for clouds that refuse ES256). */
  rsaKey: boolean;
}

export interface ProfileTypeSpec<P extends ProfileBase = ProfileBase> {
  /** The `type` value, e.g. aws-oidc. Unique across clouds. */
  readonly type: string;
  /** One line for the generated config reference. */
  readonly summary: string;
  /** The device's JWT identity: such a profile needs the [oidc] table. */
  readonly usesOidc?: boolean;
  /** Paths the profile names, made absolute (relative to the config file). */
  resolvePaths?(p: P, expand: (path: string) => string): P;
  /** What the schema cannot check; each problem "profiles.NAME.key: what is wrong". */
  check?(name: string, p: P, view: ConfigView, problems: string[]): void;
  /** The profile whose credentials this one signs with (role chaining). */
  sourceProfile?(p: P): string | undefined;
  /** Who the credentials act as, from the config alone (for listings and a profile that cannot start). */
  principal(p: P): string;
}

/** A cloud as the config loader sees it. */
export interface CloudSpec {
  /** Short name used in config checks and listings: aws, gcp. */
  readonly name: string;
  readonly title: string;
  readonly profileTypes: readonly ProfileTypeSpec<any>[];
  /** Its endpoints serve a default profile, so a config with several of its profiles must name one. */
  readonly requiresDefault?: boolean;
}
