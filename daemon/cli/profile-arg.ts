/** Checking a --profile value against the config, with a "did you mean" for a near miss. */
import type { ResolvedConfig } from '../config/load.js';
import { CliError, EXIT } from './cli-error.js';
import { closest } from './suggest.js';

export function requireProfile(cfg: ResolvedConfig, name: string): void {
  if (cfg.profiles.has(name)) return;
  const names = [...cfg.profiles.keys()];
  const near = closest(name, names);
  throw new CliError(`no profile named ${name} in ${cfg.file}`, EXIT.usage, `${near ? `did you mean '${near}'? ` : ''}profiles: ${names.join(', ')}`);
}
