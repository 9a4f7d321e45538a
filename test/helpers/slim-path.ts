/**
 * Which path a CLI command took (daemon/cli/fast/ or main.ts), read from the modules its process
 * loaded (trace-loads.ts), never from time: shared by the slim-path tests of every cloud.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { MODULE_TREE_CLI, withoutSdkNodeNotice } from './cli.js';

const TRACE = fileURLToPath(new URL('./trace-loads.js', import.meta.url));

/** Loaded only when the config is parsed and validated: the full path. */
export const FULL = /\/daemon\/config\/(load|validate|validators\.generated|validator-runtime)\.js$/;

/** Never loaded by the slim path; `cloud`: the profile's cloud, whose CLI half alone is loaded ('none': status). */
export function notSlim(cloud: string): Array<{ what: string; re: RegExp }> {
  const others = ['aws', 'gcp', 'azure'].filter((c) => c !== cloud).join('|');
  return [
    { what: 'the config loader or its validators', re: FULL },
    { what: 'ajv', re: /node_modules\/ajv\// },
    { what: 'the schema library', re: /node_modules\/@sinclair\/typebox\// },
    { what: 'the TOML parser', re: /node_modules\/smol-toml\// },
    { what: "another cloud's modules", re: new RegExp(`/daemon/clouds/(${others})/`) },
    { what: 'the cloud specs', re: /\/daemon\/clouds\/(specs|registry|[a-z]+\/(spec|index|config-checks|checks))\.js$/ },
    // AWS's and status's slim path need no cryptography at all; loading node:crypto is ~7 ms of them.
    // cli/daemon-http.ts speaks to the daemon: node's HTTP client is some 6 ms of every call.
    { what: "node:http's client", re: /^NativeModule (_http_client|_http_agent)$/ },
    ...(cloud === 'aws' || cloud === 'none'
      ? [{ what: 'node:crypto (util/sha256.ts digests the config)', re: /^NativeModule crypto$/ }]
      : []),
    {
      what: 'a cloud runtime, an SDK or a key backend',
      re: /\/daemon\/(providers\/create-providers|clouds\/[a-z]+\/runtime|keys\/(?!native\/))|node_modules\/@aws-sdk\//,
    },
  ];
}

export interface Traced {
  status: number | null;
  stdout: string;
  stderr: string;
  loaded: string[];
}

export const slim = (r: Traced): boolean =>
  r.loaded.some((u) => u.endsWith('/daemon/cli/fast/find-daemon.js')) && !r.loaded.some((u) => FULL.test(u));
export const full = (r: Traced): boolean => r.loaded.some((u) => u.endsWith('/daemon/config/validators.generated.js'));

/**
 * `traced(args, env)` runs the CLI with every load recorded, in a log directory removed after `t`.
 * `entry`: tsc's tree by default, whose file names say which modules ran; the bundle's are chunks.
 */
export function tracer(t: Test, entry: string = MODULE_TREE_CLI): { traced: (args: string[], env?: NodeJS.ProcessEnv) => Traced } {
  const dir = mkdtempSync(join(tmpdir(), 'credport-fast-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let runs = 0;
  return {
    traced(args, env = {}) {
      const log = join(dir, `loaded-${runs++}.txt`);
      // Without NODE_OPTIONS: tap adds its own hooks to every child through it, and they load modules
      // (node:crypto among them) that are tap's, not credport's.
      const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--import', TRACE, entry, ...args], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, LOADED_LOG: log },
        encoding: 'utf8',
        timeout: 60_000,
      });
      const loaded = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
      return { status: r.status, stdout: r.stdout, stderr: withoutSdkNodeNotice(r.stderr), loaded };
    },
  };
}
