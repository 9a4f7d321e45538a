/**
 * The bundle (scripts/bundle.ts, dist/bundle/): what the package's `bin` runs. Most tests run it as the
 * CLI; these check what is particular to it. Its slim path loads only its two CommonJS files, which hold
 * no config parser, validator or server (read from the chunks the process loaded, whose esbuild markers name the modules
 * inside) and prints what tsc's tree prints; it finds package.json from its own place; every bundled
 * package's licence ships beside it; and no path of the machine that built it is baked in.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CLI, runCli } from './helpers/cli.js';
import { spawnDaemon } from './helpers/hostile-daemon.js';
import { tracer } from './helpers/slim-path.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUNDLE = dirname(CLI);
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: { credport: string } };
const chunks = readdirSync(BUNDLE).filter((f) => /\.c?js$/.test(f));

/** The modules esbuild put in a chunk, from its `// path` markers (the bundle is not minified). */
function modulesIn(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^\/\/ ((?:node_modules|dist)\/\S+)$/gm)].map((m) => m[1]!);
}

t.test("the package's bin is the bundle's entry, with its shebang and run bit", async (t) => {
  t.equal(join(ROOT, PKG.bin.credport), CLI);
  t.match(readFileSync(CLI, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  t.not(statSync(CLI).mode & 0o111, 0, 'executable');
  const v = runCli(['--version']);
  t.equal(v.status, 0, v.stderr);
  t.equal(v.stdout.trim(), PKG.version, 'the version read from package.json two levels up, as in the compiled tree');
});

t.test('every bundled package, each version of it, has its licence in THIRD-PARTY-LICENSES.txt', async (t) => {
  const notices = readFileSync(join(BUNDLE, 'THIRD-PARTY-LICENSES.txt'), 'utf8');
  const ids = new Set<string>();
  for (const c of chunks)
    for (const m of modulesIn(join(BUNDLE, c))) {
      const at = m.lastIndexOf('node_modules/');
      if (at === -1) continue;
      const parts = m.slice(at + 'node_modules/'.length).split('/');
      const name = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
      const pkg = JSON.parse(readFileSync(join(ROOT, m.slice(0, at), 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
      ids.add(`${name}@${pkg.version}`);
    }
  t.ok(
    [...ids].some((i) => i.startsWith('fastify@')) && [...ids].some((i) => i.startsWith('pino@')),
    `the markers name the bundled packages (${ids.size})`,
  );
  for (const id of ids) t.ok(notices.includes(`\n${id}\n`), `${id}: listed`);
  // The build fails on a package with neither a licence file nor a license field; name-only is rare.
  const nameOnly = [...notices.matchAll(/^License: (\S+) \(the package ships no licence file\)$/gm)].length;
  t.ok(nameOnly < ids.size / 4, `most with their licence text (${nameOnly} of ${ids.size} name theirs only)`);
});

t.test('no path of the build machine is baked into the bundle', async (t) => {
  for (const c of chunks) t.notOk(readFileSync(join(BUNDLE, c), 'utf8').includes(ROOT), `${c}: no ${ROOT}`);
});

t.test("fastify's default schema compilers and inject() are left out, and say so if required", async (t) => {
  const modules = chunks.flatMap((c) => modulesIn(join(BUNDLE, c)));
  t.ok(
    modules.some((m) => m.startsWith('node_modules/fastify/')),
    'the markers name fastify',
  );
  // The daemon gives fastify its own compilers (server/app.ts); bundled, these are ~780 KB parsed at every start.
  for (const pkg of [
    'ajv',
    'fast-json-stringify/index.js',
    '@fastify/ajv-compiler',
    '@fastify/fast-json-stringify-compiler',
    'light-my-request',
  ])
    t.same(
      modules.filter((m) => m.startsWith(`node_modules/${pkg}`)),
      [],
      `${pkg}: not bundled`,
    );
  const text = chunks.map((c) => readFileSync(join(BUNDLE, c), 'utf8')).join('\n');
  for (const pkg of ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request'])
    t.ok(text.includes(`${pkg} is left out of credport's bundle`), `${pkg}: a require() of it throws, naming it`);
});

t.test('slim.cjs holds credport modules only; what it leaves out throws FullPathNeeded', async (t) => {
  const slim = readFileSync(join(BUNDLE, 'slim.cjs'), 'utf8');
  const modules = modulesIn(join(BUNDLE, 'slim.cjs'));
  t.ok(modules.includes('dist/daemon/cli/fast/find-daemon.js'), 'the markers name its modules');
  t.same(
    modules.filter((m) => m.startsWith('node_modules/')),
    [],
    'no npm package (x509, fastify, pino, the schema code): those are the full path',
  );
  t.same(
    modules.filter((m) =>
      /dist\/daemon\/(config\/(load|validate)|keys\/(?!native\/)|providers\/create-providers|clouds\/[a-z]+\/runtime)/.test(m),
    ),
    [],
    'no config loader, key backend or cloud runtime',
  );
  // An import() in a CommonJS file starts node's ES module loader, the cost slim.cjs exists to avoid
  // (a built-in is taken with process.getBuiltinModule instead).
  t.same(
    [...slim.matchAll(/\bimport\(\s*["'`][^"'`]*["'`]\s*\)/g)].map((m) => m[0]),
    [],
    'no import() in slim.cjs',
  );
  t.match(slim, /^"use strict";/, 'strict mode: "use strict" is its first statement');
  const stubs = [...slim.matchAll(/throw new FullPathNeeded\("([^"]+)"\)/g)].map((m) => m[1]!);
  t.ok(stubs.length > 0, `the modules left out (${stubs.join(', ')})`);
  for (const s of stubs) t.ok(statSync(join(ROOT, s)).isFile(), `${s}: a module of the compiled tree, which main.js carries`);
});

t.test("the bundle's slim path loads no parser, validator or server, and prints what the tree prints", async (t) => {
  const d = await spawnDaemon({ logLevel: 'warn' });
  t.teardown(() => d.stop());
  const { traced } = tracer(t, CLI);
  const tree = tracer(t);
  const FORBIDDEN =
    /node_modules\/(fastify|ajv|@sinclair\/typebox|smol-toml|pino)\/|dist\/daemon\/config\/(load|validate|validators\.generated)\.js$/;
  for (const args of [['auth', '--format', 'credential_process'], ['env'], ['status']]) {
    const what = args.join(' ');
    const r = traced([...args, '--config', d.stack.configFile]);
    t.equal(r.status, 0, `${what}: ${r.stderr}`);
    // ES modules are recorded as URLs, CommonJS ones as paths.
    const loadedChunks = [...new Set(r.loaded.map((u) => (u.startsWith('file:') ? fileURLToPath(u) : u)))].filter(
      (f) => dirname(f) === BUNDLE,
    );
    // Only the bin and slim.cjs: CommonJS alone, so node never starts its ES module loader for them
    // (main.js, every chunk, is the full path's).
    t.same(loadedChunks.map((f) => basename(f)).sort(), ['credport.cjs', 'slim.cjs'], `${what}: the bin and slim.cjs, no ES module chunk`);
    const modules = loadedChunks.flatMap(modulesIn);
    t.ok(
      modules.some((m) => m.endsWith('dist/daemon/cli/fast/find-daemon.js')),
      `${what}: the slim path's modules are in what was loaded`,
    );
    t.same(
      modules.filter((m) => FORBIDDEN.test(m)),
      [],
      `${what}: no chunk holding the config loader, a validator, fastify or pino was loaded`,
    );
    const fromTree = tree.traced([...args, '--config', d.stack.configFile]);
    // status reports times (uptime, expiry, last refresh) that move between the two runs, and pads columns
    // to their width: numbers and runs of spaces are compared as such.
    const steady = (s: string) => s.replace(/\d+/g, 'N').replace(/ +/g, ' ');
    t.equal(steady(r.stdout), steady(fromTree.stdout), `${what}: the same output as the compiled tree`);
  }
});
