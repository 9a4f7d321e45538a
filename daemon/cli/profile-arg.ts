/** Checking a --profile value against the config, with a "did you mean" for a near miss. */
import { cloudOfType } from '../clouds/registry.js';
import type { CloudCli, CloudModule } from '../clouds/types.js';
import type { ResolvedConfig } from '../config/load.js';
import { CliError, EXIT } from './cli-error.js';
import { closest } from '../util/suggest.js';

export function requireProfile(cfg: ResolvedConfig, name: string): void {
  if (cfg.profiles.has(name)) return;
  const names = [...cfg.profiles.keys()];
  const near = closest(name, names);
  throw new CliError(
    `no profile named ${name} in ${cfg.file}`,
    EXIT.usage,
    `${near ? `did you mean '${near}'? ` : ''}profiles: ${names.join(', ')}`,
  );
}

/** The CLI half of the cloud a profile belongs to (loaded on demand). */
export async function cloudCliOf(cfg: ResolvedConfig, name: string): Promise<{ cloud: CloudModule; cli: CloudCli }> {
  const p = cfg.profiles.get(name);
  const cloud = p && cloudOfType(p.type);
  if (!cloud) throw new CliError(`profile ${name} has no known type`, EXIT.config);
  return { cloud, cli: await cloud.cli() };
}
