/** Where credport looks for its files when the config does not say. */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

export type Env = Readonly<Record<string, string | undefined>>;

function home(env: Env): string {
  return env.HOME && env.HOME.length > 0 ? env.HOME : homedir();
}

export function xdgConfigHome(env: Env): string {
  const v = env.XDG_CONFIG_HOME;
  return v && isAbsolute(v) ? v : join(home(env), '.config');
}

export function xdgStateHome(env: Env): string {
  const v = env.XDG_STATE_HOME;
  return v && isAbsolute(v) ? v : join(home(env), '.local', 'state');
}

/** `--config`, else CREDPORT_CONFIG, else $XDG_CONFIG_HOME/credport/config.toml. */
export function configPath(flag: string | undefined, env: Env): string {
  if (flag) return resolve(flag);
  if (env.CREDPORT_CONFIG) return resolve(env.CREDPORT_CONFIG);
  return join(xdgConfigHome(env), 'credport', 'config.toml');
}

/**
 * Expands a leading `~` and the variables `$HOME`, `$XDG_STATE_HOME` and
 * `$XDG_CONFIG_HOME` (with their XDG defaults); relative paths are taken
 * relative to the config file's directory so a config is portable.
 */
export function expandPath(p: string, env: Env, baseDir: string): string {
  let out = p;
  if (out === '~' || out.startsWith('~/')) out = home(env) + out.slice(1);
  out = out.replace(/\$(\{)?(HOME|XDG_STATE_HOME|XDG_CONFIG_HOME)(?:\})?/g, (_m, _b, name: string) => {
    if (name === 'HOME') return home(env);
    if (name === 'XDG_STATE_HOME') return xdgStateHome(env);
    return xdgConfigHome(env);
  });
  return resolve(baseDir, out);
}
