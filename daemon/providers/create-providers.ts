/**
 * Builds the provider a configured profile asks for, through the cloud that registers its type; and
 * what the daemon needs to order, diff and replace profiles without knowing any cloud.
 */
import type { ResolvedConfig } from '../config/load.js';
import type { Env } from '../config/paths.js';
import type { ProfileConfig } from '../config/schema.js';
import { CLOUDS } from '../clouds/registry.js';
import { profileType } from '../clouds/specs.js';
import type { CloudRuntime, ProviderDeps, ProviderTuning } from '../clouds/types.js';
import type { KeySigner } from '../keys/signer.js';
import { ProviderError, type ManagedProvider } from './types.js';
import { DEFAULT_UPSTREAM_LIMITS } from './upstream/bounded-fetch.js';

export type { ProviderDeps, ProviderTuning } from '../clouds/types.js';
export type { CertificateInfo, ManagedProvider } from './types.js';

/** The refresher's backstop deadline for one fetch, from the provider tuning. */
export function refreshDeadlineMs(tuning: ProviderTuning): number {
  return (
    tuning.refreshDeadlineMs ??
    (tuning.requestTimeoutMs ?? DEFAULT_UPSTREAM_LIMITS.deadlineMs) * Math.max(1, tuning.maxAttempts ?? 3) + 15_000
  );
}

/** The runtimes of the clouds a config uses, loaded once; providers are then built synchronously. */
export class CloudRuntimes {
  private constructor(readonly byCloud: ReadonlyMap<string, CloudRuntime>) {}

  static async load(cfg: ResolvedConfig): Promise<CloudRuntimes> {
    const used = new Set([...cfg.profiles.values()].map((p) => profileType(p.type)?.cloud.name));
    const loaded = await Promise.all(CLOUDS.filter((c) => used.has(c.name)).map(async (c) => [c.name, await c.runtime()] as const));
    const runtimes = new CloudRuntimes(new Map(loaded));
    await runtimes.prepare(cfg);
    return runtimes;
  }

  /** Loads what the config's profile types need, in the clouds already loaded (a reload may add a type). */
  async prepare(cfg: ResolvedConfig): Promise<void> {
    const types = new Set([...cfg.profiles.values()].map((p) => p.type));
    await Promise.all([...this.byCloud.values()].map((r) => r.prepare?.(types)));
  }

  createProvider(name: string, p: ProfileConfig, deps: ProviderDeps): ManagedProvider {
    const found = profileType(p.type);
    if (!found) throw new ProviderError('InvalidConfiguration', `profile ${name}: no cloud serves type ${p.type}`, false);
    const runtime = this.byCloud.get(found.cloud.name);
    if (!runtime) {
      // A cloud's endpoints are routes, and routes are fixed once the server listens.
      throw new ProviderError(
        'RestartRequired',
        `profile ${name}: the daemon started without ${found.cloud.title} profiles; restart it to serve them`,
        false,
      );
    }
    return runtime.createProvider(name, p, deps);
  }

  /** Clouds a config needs that were not loaded (a reload that adds a cloud's first profile). */
  missing(cfg: ResolvedConfig): string[] {
    const clouds = new Set(
      [...cfg.profiles.values()].map((p) => profileType(p.type)?.cloud.name).filter((c): c is string => c !== undefined),
    );
    return [...clouds].filter((c) => !this.byCloud.has(c));
  }
}

/** Profile names with every chain's source before the profiles chained onto it. */
export function profileOrder(cfg: ResolvedConfig): string[] {
  const out: string[] = [];
  const visit = (n: string, depth: number) => {
    if (out.includes(n) || depth > cfg.profiles.size) return;
    const p = cfg.profiles.get(n);
    const source = p && profileType(p.type)?.spec.sourceProfile?.(p);
    if (source !== undefined) visit(source, depth + 1);
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
export function brokenProvider(_name: string, p: ProfileConfig, err: unknown): ManagedProvider {
  const e = err instanceof ProviderError ? err : new ProviderError('InvalidConfiguration', (err as Error).message ?? String(err), false);
  return {
    unattended: true,
    fetch: () => Promise.reject(e),
    describe: () => ({ type: p.type, source: `not started: ${e.code}`, principal: profileType(p.type)?.spec.principal(p) ?? '' }),
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
  const spec = p && profileType(p.type)?.spec;
  const source = p && spec?.sourceProfile?.(p);
  return JSON.stringify({
    profile: p,
    oidc: spec?.usesOidc ? (cfg.oidc ?? null) : null,
    source: source !== undefined ? profileFingerprint(source, cfg) : null,
  });
}

/**
 * The provider for one profile without a daemon (`auth --direct`): only that
 * profile and the sources it chains onto are built, so an unrelated profile
 * with a broken key file or certificate cannot stop it. Sources are fetched
 * directly.
 */
export async function createDirectProvider(
  name: string,
  cfg: ResolvedConfig,
  signer: KeySigner,
  env: Env,
  tuning: ProviderTuning = {},
  background?: ProviderDeps['background'],
): Promise<{ provider: ManagedProvider; destroy: () => void }> {
  const runtimes = await CloudRuntimes.load(cfg);
  const built = new Map<string, ManagedProvider>();
  const build = (n: string): ManagedProvider => {
    const existing = built.get(n);
    if (existing) return existing;
    const p = cfg.profiles.get(n);
    if (!p) throw new ProviderError('InvalidConfiguration', `no profile named ${n}`, false);
    // Sources first: a chained provider asks for its source's unattended flag at construction.
    const source = profileType(p.type)?.spec.sourceProfile?.(p);
    if (source !== undefined) build(source);
    const deps: ProviderDeps = {
      signer,
      env,
      config: cfg,
      tuning,
      source: (src) => () => build(src).fetch(),
      sourceUnattended: (src) => build(src).unattended,
      // Only the profile asked for: `cert renew` renews that one, not its sources.
      ...(background && n === name ? { background } : {}),
    };
    const provider = runtimes.createProvider(n, p, deps);
    built.set(n, provider);
    return provider;
  };
  const provider = build(name);
  return { provider, destroy: () => built.forEach((p) => p.destroy?.()) };
}
