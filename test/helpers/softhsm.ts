/**
 * A fresh SoftHSM2 token per test file: its own softhsm2.conf and token
 * directory under a temporary directory, so tests never touch the machine's
 * tokens and never see each other's. SOFTHSM2_CONF is set in this process's
 * environment before the module is first initialised (SoftHSM reads it in
 * C_Initialize), and passed to pkcs11-tool / softhsm2-util explicitly.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAddon } from '../../daemon/keys/native/addon.js';
import { tool } from './tools.js';

const MODULE_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so', // Debian, Ubuntu
  '/usr/lib64/pkcs11/libsofthsm2.so', // Fedora
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so', // Homebrew on Apple silicon
  '/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so',
];

export const SOFTHSM_MODULE = process.env.SOFTHSM2_MODULE ?? MODULE_CANDIDATES.find((p) => existsSync(p)) ?? MODULE_CANDIDATES[0]!;

const succeeds = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

export const softhsm2 = tool(
  'SoftHSM2 (softhsm2-util and libsofthsm2.so)',
  () => existsSync(SOFTHSM_MODULE) && succeeds('softhsm2-util', ['--version']),
  'apt-get install softhsm2',
);
export const pkcs11Tool = tool(
  'opensc pkcs11-tool',
  () => spawnSync('pkcs11-tool', ['--help'], { stdio: 'ignore' }).error === undefined,
  'apt-get install opensc',
);
export const enclaveAddon = tool(
  'the credport enclave addon (enclave-addon/build/Release/credport_enclave.node)',
  () => loadAddon().available,
  'node scripts/build-addon.mjs',
);

export interface SoftHsm {
  module: string;
  conf: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** The temporary directory holding the config and the tokens. */
  dir: string;
  tokenDir: string;
  /** Runs pkcs11-tool against this token (logged in); throws with its output on failure. */
  pkcs11Tool(args: string[]): string;
  /** Moves the token's storage out of SoftHSM's sight (a token pulled out); returns a function that puts it back. */
  removeToken(): () => void;
  cleanup(): void;
}

export function createSoftHsm(opts: { label?: string; pin?: string; soPin?: string } = {}): SoftHsm {
  const dir = mkdtempSync(join(tmpdir(), 'credport-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  const conf = join(dir, 'softhsm2.conf');
  const tokenLabel = opts.label ?? 'credport';
  const pin = opts.pin ?? '1234';
  const soPin = opts.soPin ?? '5678';
  writeFileSync(
    conf,
    [`directories.tokendir = ${tokenDir}`, 'objectstore.backend = file', 'log.level = ERROR', 'slots.removable = false', ''].join('\n'),
  );
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  // Must precede the module's first C_Initialize in this process.
  process.env.SOFTHSM2_CONF = conf;
  mkdirSync(tokenDir, { recursive: true }); // softhsm2-util wants it to exist
  const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', tokenLabel, '--pin', pin, '--so-pin', soPin], {
    env,
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr}${init.stdout}`);

  const run = (args: string[]): string => {
    const r = spawnSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', tokenLabel, '--login', '--pin', pin, ...args], {
      env,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`pkcs11-tool ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  return {
    module: SOFTHSM_MODULE,
    conf,
    tokenLabel,
    pin,
    soPin,
    dir,
    tokenDir,
    pkcs11Tool: run,
    removeToken() {
      // SoftHSM keeps each token in a directory of its own under tokendir;
      // moving it outside tokendir is, to SoftHSM, the token being pulled out.
      const [name] = readdirSync(tokenDir);
      if (name === undefined) throw new Error('no SoftHSM token directory to remove');
      const away = join(dir, `away-${name}`);
      renameSync(join(tokenDir, name), away);
      return () => renameSync(away, join(tokenDir, name));
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
