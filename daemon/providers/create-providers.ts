/** Builds the provider a configured profile asks for. */
import { CERTIFICATE_ON_TOKEN, type ResolvedConfig } from '../config/load.js';
import type { Env } from '../config/paths.js';
import type { AwsRolesAnywhereProfileConfig, ProfileConfig } from '../config/schema.js';
import { defaultSubject } from '../identity/jwt.js';
import { isKeyBackendError } from '../keys/errors.js';
import type { KeySigner } from '../keys/signer.js';
import { readSecretFile } from '../util/secure-file.js';
import { AwsAssumeRoleProvider } from '../clouds/aws/assume-role/provider.js';
import { AwsOidcProvider } from '../clouds/aws/oidc/provider.js';
import { defaultSessionName } from '../clouds/aws/oidc/session-name.js';
import { CertificateError, TokenCertificateSource } from '../clouds/aws/rolesanywhere/certificates.js';
import { AwsRolesAnywhereProvider, type CertificateInfo } from '../clouds/aws/rolesanywhere/provider.js';
import { fromKeyFile, fromKeySigner } from '../clouds/aws/rolesanywhere/signing-key.js';
import { ProviderError, type AwsCredentials, type CredentialProvider } from './types.js';
import { DEFAULT_UPSTREAM_LIMITS } from './upstream/bounded-fetch.js';

export type { CertificateInfo } from '../clouds/aws/rolesanywhere/provider.js';

export interface ProviderTuning {
  /** Attempts per refresh inside a provider; tests lower it so that faults surface at once. */
  maxAttempts?: number;
  /** One overall deadline per upstream call: connect, headers and body (default 10 s). */
  requestTimeoutMs?: number;
  /** Largest upstream answer read (default 256 KiB); larger ones are cut off while streaming. */
  maxBodyBytes?: number;
  now?: () => number;
  /** Longest a credentials request waits on a refresh (default 1 s, what SDK clients wait). */
  requestWaitMs?: number;
  /**
   * A whole refresh (every attempt inside the provider) abandoned after this long; default
   * requestTimeoutMs x maxAttempts plus 15 s for the provider's own retry pauses.
   */
  refreshDeadlineMs?: number;
}

/** The refresher's backstop deadline for one fetch, from the provider tuning. */
export function refreshDeadlineMs(tuning: ProviderTuning): number {
  return tuning.refreshDeadlineMs ?? (tuning.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs) * Math.max(1, tuning.maxAttempts ?? 3) + 15_000;
}

export type ManagedProvider = CredentialProvider & { destroy?: () => void; certificateInfo?: () => CertificateInfo | undefined };

export interface ProviderDeps {
  signer: KeySigner;
  env: Env;
  /** Another profile's credentials, for role chaining (the daemon: its refresher; `auth --direct`: a fetch). */
  source: (profile: string) => () => Promise<AwsCredentials>;
  /** Whether that profile can refresh without a person present. */
  sourceUnattended: (profile: string) => boolean;
}

function passphrase(p: AwsRolesAnywhereProfileConfig, env: Env): string | undefined {
  if (p.private_key_passphrase_file !== undefined) {
    // One trailing newline is what an editor leaves; it is not part of the passphrase.
    return readSecretFile(p.private_key_passphrase_file, 'passphrase file', 'create it with mode 0600').toString('utf8').replace(/\r?\n$/, '');
  }
  if (p.private_key_passphrase_env !== undefined) {
    const v = env[p.private_key_passphrase_env];
    if (v === undefined) throw new ProviderError('InvalidConfiguration', `environment variable ${p.private_key_passphrase_env} (private_key_passphrase_env) is not set`, false);
    return v;
  }
  return undefined;
}

/**
 * The certificate on the token that holds the device key, read through the signer's own session before
 * every CreateSession. Token failures keep the backend's code (CERTIFICATE_NOT_FOUND, TOKEN_NOT_PRESENT,
 * PIN_INCORRECT, ...) so that /health says what to fix.
 */
function tokenCertificate(name: string, p: AwsRolesAnywhereProfileConfig, signer: KeySigner): TokenCertificateSource {
  const readCertificates = signer.readCertificates?.bind(signer);
  if (readCertificates === undefined) {
    throw new ProviderError(
      'InvalidConfiguration',
      `profile ${name}: certificate = "${CERTIFICATE_ON_TOKEN}" reads the certificate from the PKCS#11 token holding the device key, but the device key is a ${signer.describe().backend} key`,
      false,
    );
  }
  const where = signer.describe().location;
  const read = async (): Promise<Uint8Array[]> => {
    try {
      return await readCertificates();
    } catch (err) {
      if (isKeyBackendError(err)) throw new CertificateError(`reading the certificate from the token: ${err.message}`, err.code);
      throw err;
    }
  };
  return new TokenCertificateSource(read, where, p.chain);
}

export function createProvider(name: string, p: ProfileConfig, cfg: ResolvedConfig, deps: ProviderDeps, tuning: ProviderTuning = {}): ManagedProvider {
  const common = {
    ...(tuning.maxAttempts !== undefined ? { maxAttempts: tuning.maxAttempts } : {}),
    ...(tuning.requestTimeoutMs !== undefined ? { requestTimeoutMs: tuning.requestTimeoutMs } : {}),
    ...(tuning.maxBodyBytes !== undefined ? { maxBodyBytes: tuning.maxBodyBytes } : {}),
  };
  const { signer } = deps;
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
        ...common,
        ...(tuning.now ? { now: tuning.now } : {}),
      });
    }
    case 'aws-rolesanywhere': {
      const onToken = p.certificate === CERTIFICATE_ON_TOKEN;
      if (onToken && p.private_key !== undefined) {
        // Config validation refuses this too; here for callers that build profiles themselves.
        throw new ProviderError('InvalidConfiguration', `profile ${name}: certificate = "${CERTIFICATE_ON_TOKEN}" belongs to the device key; it cannot be used with private_key`, false);
      }
      return new AwsRolesAnywhereProvider({
        key: p.private_key !== undefined ? fromKeyFile(p.private_key, passphrase(p, deps.env)) : fromKeySigner(signer),
        certificate: onToken ? tokenCertificate(name, p, signer) : p.certificate,
        ...(!onToken && p.chain !== undefined ? { chain: p.chain } : {}),
        trustAnchorArn: p.trust_anchor_arn,
        profileArn: p.profile_arn,
        roleArn: p.role_arn,
        durationSeconds: p.duration_seconds,
        ...(p.role_session_name !== undefined ? { roleSessionName: p.role_session_name } : {}),
        ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
        ...common,
        ...(tuning.now ? { now: tuning.now } : {}),
      });
    }
    case 'aws-assume-role':
      return new AwsAssumeRoleProvider({
        source: deps.source(p.source_profile),
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

/** Profile names with every chain's source before the profiles chained onto it. */
export function profileOrder(cfg: ResolvedConfig): string[] {
  const out: string[] = [];
  const visit = (n: string, depth: number) => {
    if (out.includes(n) || depth > cfg.profiles.size) return;
    const p = cfg.profiles.get(n);
    if (p?.type === 'aws-assume-role') visit(p.source_profile, depth + 1);
    out.push(n);
  };
  for (const n of cfg.profiles.keys()) visit(n, 0);
  return out;
}

/**
 * A profile whose provider cannot even be built (a key file that does not
 * parse, a missing passphrase): it fails every fetch with the reason, so the
 * daemon still serves the other profiles and /health says what is wrong.
 */
export function brokenProvider(name: string, p: ProfileConfig, err: unknown): ManagedProvider {
  const e = err instanceof ProviderError ? err : new ProviderError('InvalidConfiguration', (err as Error).message ?? String(err), false);
  return {
    unattended: true,
    fetch: () => Promise.reject(e),
    describe: () => ({ type: p.type, source: `not started: ${e.code}`, roleArn: p.role_arn, region: 'region' in p ? p.region : (p.trust_anchor_arn.split(':')[3] ?? '') }),
  };
}

/**
 * What a profile's credentials depend on, as a comparable string: a reload
 * refreshes exactly the profiles whose fingerprint changed, including every
 * profile chained onto a changed one. Refresh tuning ([refresh]) is not part of
 * it: a new policy is applied to the running refreshers, credentials kept.
 */
export function profileFingerprint(name: string, cfg: ResolvedConfig): string {
  const p = cfg.profiles.get(name);
  return JSON.stringify({
    profile: p,
    oidc: p?.type === 'aws-oidc' ? (cfg.oidc ?? null) : null,
    source: p?.type === 'aws-assume-role' ? profileFingerprint(p.source_profile, cfg) : null,
  });
}

/**
 * The provider for one profile without a daemon (`auth --direct`): only that
 * profile and the sources it chains onto are built, so an unrelated profile
 * with a broken key file or certificate cannot stop it. Sources are fetched
 * directly.
 */
export function createDirectProvider(
  name: string,
  cfg: ResolvedConfig,
  signer: KeySigner,
  env: Env,
  tuning: ProviderTuning = {},
): { provider: ManagedProvider; destroy: () => void } {
  const built = new Map<string, ManagedProvider>();
  const build = (n: string): ManagedProvider => {
    const existing = built.get(n);
    if (existing) return existing;
    const p = cfg.profiles.get(n);
    if (!p) throw new ProviderError('InvalidConfiguration', `no profile named ${n}`, false);
    // Sources first: a chained provider asks for its source's unattended flag at construction.
    if (p.type === 'aws-assume-role') build(p.source_profile);
    const deps: ProviderDeps = {
      signer,
      env,
      source: (src) => () => build(src).fetch(),
      sourceUnattended: (src) => build(src).unattended,
    };
    const provider = createProvider(n, p, cfg, deps, tuning);
    built.set(n, provider);
    return provider;
  };
  const provider = build(name);
  return { provider, destroy: () => built.forEach((p) => p.destroy?.()) };
}
