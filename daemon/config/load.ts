/**
 * Reads the TOML config, validates it against the schema, then checks what a
 * schema cannot (addresses, URLs, which profile is the default) and resolves
 * paths. The result is everything the daemon needs, already checked.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { configPermissionProblems } from './file-permissions.js';
import { ListenAddressError, parseListen, type ListenAddress } from './listen.js';
import { expandPath, type Env } from './paths.js';
import { CLOUD_SPECS, profileType } from '../clouds/specs.js';
import { checkUrl } from '../util/urls.js';
import type { KeyAlgorithm } from '../keys/signer.js';
import type { Config, DaemonConfig, KeyConfig, OidcConfig, ProfileConfig, RefreshConfig, RsaKeyConfig } from './schema.js';
import { resolveUids } from './users.js';
import { ConfigError, validateConfig } from './validate.js';

export { ConfigError } from './validate.js';

/** The [key] table, checked, with paths expanded. */
export type ResolvedKey =
  | { backend: 'file'; path: string; algorithm?: KeyAlgorithm }
  | {
      backend: 'pkcs11';
      module: string;
      tokenLabel?: string;
      uri?: string;
      keyLabel?: string;
      keyId?: string;
      pin: { file: string } | { env: string };
    }
  | { backend: 'secure-enclave'; path: string; userPresence: boolean };

export interface ResolvedConfig {
  file: string;
  daemon: Omit<DaemonConfig, 'listen' | 'token_file' | 'log_file' | 'lock_file' | 'audit_file' | 'allow_uids' | 'monitor_uids'> & {
    listen: ListenAddress;
    tokenFile: string;
    lockFile: string;
    logFile?: string;
    /** allow_uids and monitor_uids, names resolved. */
    allowUids: number[];
    monitorUids: number[];
    /** Absent when audit_file = "off". */
    auditFile?: string;
  };
  key: ResolvedKey;
  /** The [rsa_key] table: an RSA key for RS256-only clouds (Entra ID); file keys carry algorithm RS256. */
  rsaKey?: ResolvedKey;
  oidc?: OidcConfig;
  refresh: RefreshConfig;
  profiles: ReadonlyMap<string, ProfileConfig>;
  /** Per cloud (aws, gcp): the profile its unnamed endpoints and commands use. */
  defaults: Readonly<Record<string, string>>;
  /** The first cloud's default (AWS's when AWS profiles exist): what `auth` and `env` use unasked. */
  defaultProfile: string;
}

export class ConfigNotFoundError extends Error {
  override readonly name = 'ConfigNotFoundError';
  constructor(readonly file: string) {
    super(`no config at ${file}; run 'credport init' to create one, or pass --config PATH`);
  }
}

/** Expands the paths a profile names, so that the rest of the daemon sees absolute paths only. */
function resolveProfilePaths(p: ProfileConfig, env: Env, baseDir: string): ProfileConfig {
  const spec = profileType(p.type)?.spec;
  return spec?.resolvePaths ? spec.resolvePaths(p, (v) => expandPath(v, env, baseDir)) : p;
}

function checkProfile(
  name: string,
  p: ProfileConfig,
  all: Record<string, ProfileConfig>,
  keyBackend: KeyConfig['backend'],
  problems: string[],
  rsaKey = false,
): void {
  const spec = profileType(p.type)?.spec;
  if (!spec) return; // the schema step already refused an unknown type
  spec.check?.(name, p, { profiles: all, keyBackend, rsaKey }, problems);
  const source = spec.sourceProfile?.(p);
  if (source === undefined) return;
  const key = `profiles.${name}`;
  if (!(source in all)) {
    problems.push(`${key}.source_profile: no profile named ${source}`);
    return;
  }
  // Follow the chain: a cycle would never produce credentials.
  const seen = new Set([name]);
  let cur: string | undefined = source;
  while (cur !== undefined) {
    if (seen.has(cur)) {
      problems.push(`${key}.source_profile: the chain ${[...seen, cur].join(' -> ')} is a cycle`);
      return;
    }
    seen.add(cur);
    const next: ProfileConfig | undefined = all[cur];
    cur = next ? profileType(next.type)?.spec.sourceProfile?.(next) : undefined;
  }
}

/**
 * The default profile of each cloud: the one marked default = true, else the one named "default", else
 * the cloud's only profile. A cloud whose endpoints serve a default (AWS: /v1/credentials and IMDS)
 * must have one.
 */
function pickDefaultProfiles(profiles: Record<string, ProfileConfig>, problems: string[]): Record<string, string> {
  const defaults: Record<string, string> = {};
  const clouds = CLOUD_SPECS.filter((c) => Object.values(profiles).some((p) => profileType(p.type)?.cloud === c));
  for (const cloud of clouds) {
    const names = Object.keys(profiles).filter((n) => profileType(profiles[n]!.type)?.cloud === cloud);
    // With one cloud configured, "profile" says it all; with several, the cloud is named.
    const which = clouds.length > 1 ? `${cloud.title} profile` : 'profile';
    const marked = names.filter((n) => profiles[n]?.default === true);
    if (marked.length > 1) {
      problems.push(`profiles: more than one ${which} has default = true (${marked.join(', ')})`);
      defaults[cloud.name] = marked[0] ?? '';
    } else if (marked.length === 1) defaults[cloud.name] = marked[0] ?? '';
    else if (names.includes('default')) defaults[cloud.name] = 'default';
    else if (names.length === 1) defaults[cloud.name] = names[0] ?? '';
    else if (cloud.requiresDefault) {
      problems.push(`profiles: name one ${which} "default" or set default = true on one of ${names.join(', ')}`);
      defaults[cloud.name] = names[0] ?? '';
    }
  }
  return defaults;
}

function resolveKey(k: KeyConfig, env: Env, baseDir: string, problems: string[], table = 'key'): ResolvedKey {
  switch (k.backend) {
    case 'file':
      return { backend: 'file', path: expandPath(k.path, env, baseDir) };
    case 'secure-enclave':
      return { backend: 'secure-enclave', path: expandPath(k.path, env, baseDir), userPresence: k.user_presence };
    case 'pkcs11': {
      if ((k.pin_file === undefined) === (k.pin_env === undefined)) {
        problems.push(`${table}: give exactly one of pin_file and pin_env (PINs are never read from the command line)`);
      }
      if (k.token_label === undefined && k.uri === undefined)
        problems.push(`${table}: give token_label or uri to say which token holds the key`);
      if (k.uri && /[?&;]pin-(value|source)=/.test(k.uri))
        problems.push(`${table}.uri: must not contain a PIN (pin-value / pin-source); use pin_file or pin_env`);
      return {
        backend: 'pkcs11',
        module: expandPath(k.module, env, baseDir),
        ...(k.token_label !== undefined ? { tokenLabel: k.token_label } : {}),
        ...(k.uri !== undefined ? { uri: k.uri } : {}),
        ...(k.key_label !== undefined ? { keyLabel: k.key_label } : {}),
        ...(k.key_id !== undefined ? { keyId: k.key_id.toLowerCase() } : {}),
        pin: k.pin_file !== undefined ? { file: expandPath(k.pin_file, env, baseDir) } : { env: k.pin_env ?? '' },
      };
    }
  }
}

/** Label of the [rsa_key] on a token when the table names none: not the device key's "device". */
export const DEFAULT_RSA_KEY_LABEL = 'device-rsa';

function resolveRsaKey(k: RsaKeyConfig, env: Env, baseDir: string, problems: string[]): ResolvedKey {
  if (k.backend === 'file') return { backend: 'file', path: expandPath(k.path, env, baseDir), algorithm: 'RS256' };
  const named = k.key_label !== undefined || k.key_id !== undefined || (k.uri !== undefined && /[:;](object|id)=/.test(k.uri));
  return resolveKey(named ? k : { ...k, key_label: DEFAULT_RSA_KEY_LABEL }, env, baseDir, problems, 'rsa_key');
}

/** Validates a parsed config object (also used by `credport init` before it writes one). */
export function resolveConfig(file: string, data: unknown, env: Env): ResolvedConfig {
  const cfg: Config = validateConfig(file, data);
  const problems: string[] = [];
  const baseDir = dirname(file);

  let listen: ListenAddress = { host: '127.0.0.1', port: 80 };
  try {
    listen = parseListen(cfg.daemon.listen);
  } catch (err) {
    if (!(err instanceof ListenAddressError)) throw err;
    problems.push(`daemon.listen: ${err.message}`);
  }

  const profileEntries = Object.entries(cfg.profiles).map(
    ([name, p]) => [name, resolveProfilePaths(p, env, baseDir)] as [string, ProfileConfig],
  );
  const oidcTypes = [...new Set(profileEntries.map(([, p]) => p.type).filter((t) => profileType(t)?.spec.usesOidc))];
  if (oidcTypes.length > 0 && !cfg.oidc) {
    problems.push(`oidc: missing; ${oidcTypes.join(' and ')} profiles need an [oidc] table with at least issuer = "https://..."`);
  }
  if (cfg.oidc) checkUrl(cfg.oidc.issuer, 'oidc.issuer', problems);
  for (const key of cfg.oidc?.transitive_tag_keys ?? []) {
    // STS refuses a transitive key that is not a session tag; say so before any token is signed.
    if (!Object.hasOwn(cfg.oidc?.principal_tags ?? {}, key)) {
      problems.push(`oidc.transitive_tag_keys: "${key}" is not a key of oidc.principal_tags`);
    }
  }
  for (const [name, p] of profileEntries) checkProfile(name, p, cfg.profiles, cfg.key.backend, problems, cfg.rsa_key !== undefined);
  if (cfg.refresh.retry_max_seconds < cfg.refresh.retry_base_seconds) {
    problems.push('refresh.retry_max_seconds: must not be smaller than refresh.retry_base_seconds');
  }
  const defaults = pickDefaultProfiles(cfg.profiles, problems);
  const defaultProfile = CLOUD_SPECS.map((c) => defaults[c.name]).find((n) => n !== undefined) ?? Object.keys(cfg.profiles)[0] ?? '';
  const allowUids = resolveUids(cfg.daemon.allow_uids, 'daemon.allow_uids', problems);
  const monitorUids = resolveUids(cfg.daemon.monitor_uids, 'daemon.monitor_uids', problems);
  const key = resolveKey(cfg.key, env, baseDir, problems);
  const rsaKey = cfg.rsa_key ? resolveRsaKey(cfg.rsa_key, env, baseDir, problems) : undefined;
  if (rsaKey?.backend === 'file' && key.backend === 'file' && rsaKey.path === key.path)
    problems.push('rsa_key.path: the device key file; give the RSA key its own file');
  if (problems.length > 0) throw new ConfigError(file, problems);

  const { listen: _l, token_file, log_file, lock_file, audit_file, allow_uids: _a, monitor_uids: _m, ...daemonRest } = cfg.daemon;
  return {
    file,
    daemon: {
      ...daemonRest,
      listen,
      allowUids,
      monitorUids,
      tokenFile: expandPath(token_file, env, baseDir),
      lockFile: expandPath(lock_file, env, baseDir),
      ...(log_file !== undefined ? { logFile: expandPath(log_file, env, baseDir) } : {}),
      ...(audit_file !== 'off' ? { auditFile: expandPath(audit_file, env, baseDir) } : {}),
    },
    key,
    ...(rsaKey ? { rsaKey } : {}),
    ...(cfg.oidc ? { oidc: { ...cfg.oidc, issuer: cfg.oidc.issuer.replace(/\/+$/, '') } } : {}),
    refresh: cfg.refresh,
    profiles: new Map(profileEntries),
    defaults,
    defaultProfile,
  };
}

export function parseConfigText(file: string, text: string): unknown {
  try {
    return parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(file, [`line ${err.line}, column ${err.column}: ${err.message.split('\n')[0] ?? 'invalid TOML'}`]);
    }
    throw err;
  }
}

/** How a config returned by loadConfig came about: its bytes, and the environment it was resolved in. */
export interface ConfigSource {
  /** sha256 (hex) of the exact bytes parsed. */
  sha256: string;
  /**
   * Every environment variable resolution read (HOME, XDG_*: path expansion), null for one unset; undefined
   * when resolution enumerated the environment, so that no list of variables would say what it depended on.
   */
  env?: Record<string, string | null>;
}

const sources = new WeakMap<ResolvedConfig, ConfigSource>();

/**
 * Where `cfg` came from (undefined for a config not read by loadConfig): the daemon publishes it, so
 * that the CLI can tell without parsing that the file still holds what it loaded and that its own
 * environment would resolve it alike.
 */
export function configSource(cfg: ResolvedConfig): ConfigSource | undefined {
  return sources.get(cfg);
}

/** `env`, recording each variable read through it. */
function recordingEnv(env: Env): { env: Env; read: () => Record<string, string | null> | undefined } {
  const read: Record<string, string | null> = {};
  let enumerated = false;
  const watched = new Proxy(env, {
    get(target, key) {
      const v: unknown = Reflect.get(target, key);
      if (typeof key === 'string') read[key] = typeof v === 'string' ? v : null;
      return v;
    },
    has(target, key) {
      if (typeof key === 'string') read[key] = typeof target[key] === 'string' ? (target[key] as string) : null;
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
  return { env: watched, read: () => (enumerated ? undefined : { ...read }) };
}

export function loadConfig(file: string, env: Env): ResolvedConfig {
  let text: string;
  let sha256: string;
  try {
    const bytes = readFileSync(file);
    sha256 = createHash('sha256').update(bytes).digest('hex');
    text = bytes.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigNotFoundError(file);
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  const unsafe = configPermissionProblems(file);
  if (unsafe.length > 0) throw new ConfigError(file, unsafe);
  const recorded = recordingEnv(env);
  const cfg = resolveConfig(file, parseConfigText(file, text), recorded.env);
  const read = recorded.read();
  sources.set(cfg, { sha256, ...(read ? { env: read } : {}) });
  return cfg;
}
