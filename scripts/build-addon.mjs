#!/usr/bin/env node
/**
 * Builds the native key-backend addon (enclave-addon/) with node-gyp. Run by
 * `npm install` (the "install" script) and by hand: `node scripts/build-addon.mjs`.
 *
 * A failed build never fails the install: the daemon still works with the
 * `file` key backend, so the reason goes to enclave-addon/build/BUILD_ERROR.txt
 * (which the daemon quotes when a hardware backend is asked for) and one
 * warning line is printed. Set CREDPORT_SKIP_ADDON=1 to skip the build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'enclave-addon');
const buildDir = join(addonDir, 'build');
const errorFile = join(buildDir, 'BUILD_ERROR.txt');
const product = join(buildDir, 'Release', 'credport_enclave.node');

function fail(reason, output = '') {
  mkdirSync(buildDir, { recursive: true });
  const text = `${reason}\n${output ? `\n--- node-gyp output (last lines) ---\n${tail(output, 60)}\n` : ''}`;
  writeFileSync(errorFile, text);
  // One line: npm shows install-script output, and a wall of compiler errors
  // would bury the fact that everything except hardware keys works.
  console.warn(
    `credport: warning: the hardware key addon was not built (${reason}); the file key backend still works. Details: ${errorFile}`,
  );
  process.exit(0);
}

function tail(text, lines) {
  return text.split('\n').slice(-lines).join('\n');
}

/** node-gyp as [command, ...args], first match wins; run with this same node. */
function findNodeGyp() {
  const candidates = [];
  // npm exports the path of its bundled node-gyp to the scripts it runs.
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  // npm's own location, when run from an npm script.
  if (process.env.npm_execpath) {
    candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  // The npm that ships next to this node (Unix and Windows layouts).
  const nodeBin = dirname(process.execPath);
  candidates.push(join(nodeBin, '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(nodeBin, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  // A node-gyp installed in the project.
  candidates.push(join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const c of candidates) {
    if (existsSync(c)) return [process.execPath, c];
  }
  // Last: a node-gyp on PATH (a global install).
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of process.platform === 'win32' ? ['node-gyp.cmd', 'node-gyp.exe'] : ['node-gyp']) {
      if (dir && existsSync(join(dir, name))) return [join(dir, name)];
    }
  }
  return undefined;
}

/**
 * Node's headers: npm may name them (npm_config_nodedir, which node-gyp reads
 * itself); otherwise a node installed with its headers (official tarballs,
 * Debian's nodejs) has them at <prefix>/include/node, which lets the build
 * work offline instead of downloading them.
 */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) {
    return [`--nodedir=${prefix}`];
  }
  return [];
}

if (process.env.CREDPORT_SKIP_ADDON === '1') fail('skipped: CREDPORT_SKIP_ADDON=1');
if (!existsSync(join(addonDir, 'binding.gyp'))) fail(`missing ${join(addonDir, 'binding.gyp')}`);

const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found (it ships with npm; or: npm install -g node-gyp)');

const [cmd, ...pre] = gyp;
const args = [...pre, 'rebuild', '--release', '--jobs=max', ...nodedirArgs()];
const run = spawnSync(cmd, args, {
  cwd: addonDir,
  encoding: 'utf8',
  env: process.env,
  // node-gyp may try to download headers; do not hang an install forever.
  timeout: 10 * 60 * 1000,
  shell: process.platform === 'win32' && !cmd.endsWith('.exe') && cmd !== process.execPath,
  maxBuffer: 64 * 1024 * 1024,
});
const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
if (run.error) fail(`node-gyp could not run: ${run.error.message}`, output);
if (run.status !== 0) {
  const firstError =
    output
      .split('\n')
      .find((l) => /error:|not found|No such file|ENOENT|gyp ERR! stack Error/.test(l))
      ?.trim() ?? `node-gyp exited with status ${run.status}`;
  fail(`build failed: ${firstError.slice(0, 200)}`, output);
}
if (!existsSync(product)) fail(`node-gyp succeeded but ${product} is missing`, output);
rmSync(errorFile, { force: true });
console.log(`credport: built the hardware key addon (${product})`);
