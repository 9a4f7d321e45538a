/**
 * The part of a loaded config that `credport auth`, `env` and `status` use, as the daemon publishes
 * it in its runtime file: with the digest of the bytes it came from, so that the CLI can answer from
 * it without parsing and validating the config again (see cli/fast/).
 */
import { profileType } from '../clouds/specs.js';
import { configSource, type ResolvedConfig } from '../config/load.js';
import { VERSION } from '../version.js';
import type { ClientView } from './runtime-file.js';

/**
 * Undefined for a config not read from a file by loadConfig (no digest to vouch for it), or whose
 * resolution depended on the environment in a way not recorded.
 */
export function clientView(cfg: ResolvedConfig): ClientView | undefined {
  const source = configSource(cfg);
  if (source?.env === undefined) return undefined;
  const profiles: ClientView['profiles'] = {};
  for (const [name, p] of cfg.profiles) {
    const cloud = profileType(p.type)?.cloud.name;
    if (cloud === undefined) return undefined;
    profiles[name] = { cloud, config: { ...p } };
  }
  return {
    version: VERSION,
    configSha256: source.sha256,
    env: source.env,
    lockFile: cfg.daemon.lockFile,
    tokenFile: cfg.daemon.tokenFile,
    defaultProfile: cfg.defaultProfile,
    defaults: { ...cfg.defaults },
    profiles,
  };
}
