/**
 * Reads the TOML config, validates it against the schema, then checks what a
 * schema cannot (addresses, URLs, which profile is the default) and resolves
 * paths. The result is everything the daemon needs, already checked.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { configPermissionProblems } from './file-permissions.js';
import { ListenAddressError, parseListen, type ListenAddress } from './listen.js';
import { expandPath, type Env } from './paths.js';
import type { Config, DaemonConfig, KeyConfig, OidcConfig, ProfileConfig, RefreshConfig } from './schema.js';
import { resolveUids } from './users.js';
import { ConfigError, validateConfig } from './validate.js';

export { ConfigError } from './validate.js';

/** The [key] table, checked, with paths expanded. */
export type ResolvedKey =
  | { backend: 'file'; path: string }
  | {
      backend: 'pkcs11';
      module: string;
      tokenLabel?: string;
      uri?: string;
      keyLabel?: string;
      keyId?: string;
      pin: { file: string } | { env: string };
    }
  | { backend: 'secure-enclave'; tag: string; userPresence: boolean };

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
  oidc?: OidcConfig;
  refresh: RefreshConfig;
  profiles: ReadonlyMap<string, ProfileConfig>;
  defaultProfile: string;
}

export class ConfigNotFoundError extends Error {
  override readonly name = 'ConfigNotFoundError';
  constructor(readonly file: string) {
    super(`no config at ${file}; run 'credport init' to create one, or pass --config PATH`);
  }
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.startsWith('127.') || h === '::1';
}

function checkUrl(value: string, key: string, problems: string[]): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${key}: expected a URL, got "${value}"`);
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`${key}: expected an http(s) URL, got "${value}"`);
  } else if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    problems.push(`${key}: must use https (plain http is accepted only for loopback hosts, such as a local emulator): the JWT and credentials would cross the network unencrypted, got "${value}"`);
  }
  if (url.search || url.hash) problems.push(`${key}: must not have a query or fragment`);
  if (url.username || url.password) problems.push(`${key}: must not contain credentials`);
}

/**
 * `certificate = "token"`: the certificate stored on the PKCS#11 token next to the device key, not a file.
 * A file of that name is written "./token".
 */
export const CERTIFICATE_ON_TOKEN = 'token';

/** Expands the paths a profile names, so that the rest of the daemon sees absolute paths only. */
function resolveProfilePaths(p: ProfileConfig, env: Env, baseDir: string): ProfileConfig {
  if (p.type !== 'aws-rolesanywhere') return p;
  const x = (v: string | undefined) => (v === undefined ? undefined : expandPath(v, env, baseDir));
  return {
    ...p,
    // "token" is a source, not a path: expanded, it would become <config dir>/token.
    certificate: p.certificate === CERTIFICATE_ON_TOKEN ? p.certificate : expandPath(p.certificate, env, baseDir),
    ...(p.chain !== undefined ? { chain: x(p.chain) } : {}),
    ...(p.private_key !== undefined ? { private_key: x(p.private_key) } : {}),
    ...(p.private_key_passphrase_file !== undefined ? { private_key_passphrase_file: x(p.private_key_passphrase_file) } : {}),
  } as ProfileConfig;
}

function arnRegion(arn: string): string | undefined {
  return arn.split(':')[3];
}

function checkProfile(name: string, p: ProfileConfig, all: Record<string, ProfileConfig>, keyBackend: KeyConfig['backend'], problems: string[]): void {
  const key = `profiles.${name}`;
  switch (p.type) {
    case 'aws-oidc':
      if (p.sts_endpoint !== undefined) checkUrl(p.sts_endpoint, `${key}.sts_endpoint`, problems);
      return;
    case 'aws-rolesanywhere':
      if (p.endpoint !== undefined) checkUrl(p.endpoint, `${key}.endpoint`, problems);
      if (arnRegion(p.trust_anchor_arn) !== arnRegion(p.profile_arn)) {
        problems.push(`${key}.profile_arn: its region (${arnRegion(p.profile_arn)}) differs from the trust anchor's (${arnRegion(p.trust_anchor_arn)}); Roles Anywhere needs both in one region`);
      }
      if (p.private_key_passphrase_file !== undefined && p.private_key_passphrase_env !== undefined) {
        problems.push(`${key}: give at most one of private_key_passphrase_file and private_key_passphrase_env`);
      }
      if ((p.private_key_passphrase_file !== undefined || p.private_key_passphrase_env !== undefined) && p.private_key === undefined) {
        problems.push(`${key}: a passphrase is set but private_key is not (the device key has no passphrase)`);
      }
      if (p.certificate === CERTIFICATE_ON_TOKEN) {
        // The certificate on the token belongs to the key next to it, which only the pkcs11 backend holds.
        if (keyBackend !== 'pkcs11') {
          problems.push(`${key}.certificate: "${CERTIFICATE_ON_TOKEN}" reads the certificate stored next to the device key on its PKCS#11 token, so it needs [key] backend = "pkcs11" (this config's key backend is "${keyBackend}"); give a certificate file instead`);
        }
        if (p.private_key !== undefined) {
          problems.push(`${key}.certificate: "${CERTIFICATE_ON_TOKEN}" is the certificate of the [key] backend's key and cannot be used with private_key; remove private_key, or give the key file's certificate as a file`);
        }
      }
      return;
    case 'aws-assume-role': {
      if (p.sts_endpoint !== undefined) checkUrl(p.sts_endpoint, `${key}.sts_endpoint`, problems);
      if (!(p.source_profile in all)) {
        problems.push(`${key}.source_profile: no profile named ${p.source_profile}`);
        return;
      }
      // Follow the chain: a cycle would never produce credentials.
      const seen = new Set([name]);
      let cur: ProfileConfig | undefined = p;
      while (cur?.type === 'aws-assume-role') {
        if (seen.has(cur.source_profile)) {
          problems.push(`${key}.source_profile: the chain ${[...seen, cur.source_profile].join(' -> ')} is a cycle`);
          return;
        }
        seen.add(cur.source_profile);
        cur = all[cur.source_profile];
      }
      return;
    }
  }
}

function pickDefaultProfile(profiles: Record<string, ProfileConfig>, problems: string[]): string {
  const names = Object.keys(profiles);
  const marked = names.filter((n) => profiles[n]?.default === true);
  if (marked.length > 1) {
    problems.push(`profiles: more than one profile has default = true (${marked.join(', ')})`);
    return marked[0] ?? '';
  }
  if (marked.length === 1) return marked[0] ?? '';
  if (names.includes('default')) return 'default';
  if (names.length === 1) return names[0] ?? '';
  problems.push(`profiles: name one profile "default" or set default = true on one of ${names.join(', ')}`);
  return names[0] ?? '';
}

function resolveKey(k: KeyConfig, env: Env, baseDir: string, problems: string[]): ResolvedKey {
  switch (k.backend) {
    case 'file':
      return { backend: 'file', path: expandPath(k.path, env, baseDir) };
    case 'secure-enclave':
      return { backend: 'secure-enclave', tag: k.tag, userPresence: k.user_presence };
    case 'pkcs11': {
      if ((k.pin_file === undefined) === (k.pin_env === undefined)) {
        problems.push('key: give exactly one of pin_file and pin_env (PINs are never read from the command line)');
      }
      if (k.token_label === undefined && k.uri === undefined) problems.push('key: give token_label or uri to say which token holds the key');
      if (k.uri && /[?&;]pin-(value|source)=/.test(k.uri)) problems.push('key.uri: must not contain a PIN (pin-value / pin-source); use pin_file or pin_env');
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

  const profileEntries = Object.entries(cfg.profiles).map(([name, p]) => [name, resolveProfilePaths(p, env, baseDir)] as [string, ProfileConfig]);
  if (profileEntries.some(([, p]) => p.type === 'aws-oidc') && !cfg.oidc) {
    problems.push('oidc: missing; aws-oidc profiles need an [oidc] table with at least issuer = "https://..."');
  }
  if (cfg.oidc) checkUrl(cfg.oidc.issuer, 'oidc.issuer', problems);
  for (const [name, p] of profileEntries) checkProfile(name, p, cfg.profiles, cfg.key.backend, problems);
  if (cfg.refresh.retry_max_seconds < cfg.refresh.retry_base_seconds) {
    problems.push('refresh.retry_max_seconds: must not be smaller than refresh.retry_base_seconds');
  }
  const defaultProfile = pickDefaultProfile(cfg.profiles, problems);
  const allowUids = resolveUids(cfg.daemon.allow_uids, 'daemon.allow_uids', problems);
  const monitorUids = resolveUids(cfg.daemon.monitor_uids, 'daemon.monitor_uids', problems);
  const key = resolveKey(cfg.key, env, baseDir, problems);
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
    ...(cfg.oidc ? { oidc: { ...cfg.oidc, issuer: cfg.oidc.issuer.replace(/\/+$/, '') } } : {}),
    refresh: cfg.refresh,
    profiles: new Map(profileEntries),
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

export function loadConfig(file: string, env: Env): ResolvedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigNotFoundError(file);
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  const unsafe = configPermissionProblems(file);
  if (unsafe.length > 0) throw new ConfigError(file, unsafe);
  return resolveConfig(file, parseConfigText(file, text), env);
}
