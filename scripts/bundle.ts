/**
 * Bundles the compiled CLI (dist/daemon/cli/, from tsc) into dist/bundle/. Part of `npm run build`.
 *
 * Why: every `credport auth` is a new process, and a daemon's start is mostly node's module loader. From
 * the compiled tree, the slim CLI path resolves, reads and links ~30 ES modules and the daemon ~150 plus
 * fastify's and pino's CommonJS files. Three outputs (docs/architecture.md, "The bundle"):
 * - main.js and its chunks (ES modules, code splitting: a dynamic import() stays a chunk of its own, so
 *   what a command does not use is never loaded);
 * - slim.cjs, the slim path of auth, env and status, one CommonJS file: node starts a CommonJS file
 *   sooner than any ES module, and one file costs one read;
 * - credport.cjs, the package's `bin`: slim.cjs or main.js.
 *
 * Left outside the bundle: the optional AWS SDK clients of the admin commands (peer dependencies, found
 * at run time or reported missing) and the native addon (loaded by path, keys/native/addon.ts).
 * The licences of the bundled packages go beside it, in THIRD-PARTY-LICENSES.txt.
 *
 * Usage: node dist/scripts/bundle.js [PACKAGE_ROOT]   (default: this checkout)
 */
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
const outdir = join(root, 'dist', 'bundle');
const cliDir = join(root, 'dist', 'daemon', 'cli');

// CommonJS packages inside an ES module bundle still call require() for node's built-ins.
const ESM_BANNER = "import { createRequire as __credportRequire } from 'node:module'; const require = __credportRequire(import.meta.url);";
// import.meta.url in slim.cjs (version.ts and keys/native/addon.ts find files from it).
// "use strict" first: esbuild's own comes after the banner, where it is no longer a directive.
const CJS_BANNER = '"use strict"; const __credportUrl = require(\'node:url\').pathToFileURL(__filename).href;';

/**
 * What slim.cjs carries: the CLI's own modules (not main.ts, which is main.js's) and each cloud's CLI
 * half, the slim path of `auth`, `env` and `status`. A dynamic import of anything else becomes a module
 * that throws FullPathNeeded (cli/fast/full-path.ts), and the command takes the full path. Without
 * this, esbuild (which cannot split CommonJS) would inline every module the slim path can reach, a
 * megabyte that node would parse at each `credport auth`.
 */
const SLIM = /\/dist\/daemon\/(cli\/(?!main\.js$).+|clouds\/(cli-loaders|[a-z]+\/cli))\.js$/;
const slimPlugin: Plugin = {
  name: 'credport-slim',
  setup(b) {
    b.onResolve({ filter: /^\./ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const target = resolve(dirname(args.importer), args.path);
      return SLIM.test(target) ? undefined : { path: relative(root, target), namespace: 'full-path' };
    });
    b.onLoad({ filter: /.*/, namespace: 'full-path' }, (args) => ({
      contents: `import { FullPathNeeded } from ${JSON.stringify(join(cliDir, 'fast', 'full-path.js'))}; throw new FullPathNeeded(${JSON.stringify(args.path)});`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

/**
 * The bin's two ways out: the slim path is slim.cjs, taken with require() (a CommonJS file through
 * import() would start node's ES module loader, which the slim path does without), and the full
 * path is main.js, an ES module.
 */
const binPlugin: Plugin = {
  name: 'credport-bin',
  setup(b) {
    b.onResolve({ filter: /^\.\/(main|fast\/index)\.js$/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      return args.path === './main.js' ? { path: './main.js', external: true } : { path: 'slim.cjs', namespace: 'slim-require' };
    });
    b.onLoad({ filter: /.*/, namespace: 'slim-require' }, () => ({ contents: "module.exports = require('./slim.cjs');", loader: 'js' }));
  },
};

/**
 * Packages fastify require()s only on paths the daemon never takes: its default schema compilers (the
 * daemon gives it its own, server/app.ts) and inject()'s request simulator. Bundled, they are about
 * 780 KB (ajv, fast-json-stringify and what they pull in) that V8 parses at every start of the daemon
 * though nothing runs them. In their place, a module that says why it is missing if ever required.
 */
const NOT_BUNDLED = ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request'];
const notBundledPlugin: Plugin = {
  name: 'credport-not-bundled',
  setup(b) {
    const names = new RegExp(`^(${NOT_BUNDLED.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`);
    b.onResolve({ filter: names }, (args) => ({ path: args.path, namespace: 'not-bundled' }));
    b.onLoad({ filter: /.*/, namespace: 'not-bundled' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is left out of credport's bundle (scripts/bundle.ts, NOT_BUNDLED): nothing in credport should need it`)});`,
      loader: 'js',
    }));
  },
};

/** The innermost package of a bundled input: `node_modules/@s/p/x.js` -> `node_modules/@s/p`, or undefined. */
function packageDirOf(input: string): string | undefined {
  const at = input.lastIndexOf('node_modules/');
  if (at === -1) return undefined;
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  const name = parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  return `${input.slice(0, at)}node_modules/${name}`;
}

function licenceText(dir: string): string | undefined {
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  return file ? readFileSync(join(dir, file), 'utf8').trim() : undefined;
}

/** One section per bundled package and version (two versions of a package are two sections). */
function thirdPartyNotices(meta: Pick<Metafile, 'inputs'>): string {
  const sections = new Map<string, string>();
  for (const input of Object.keys(meta.inputs)) {
    const rel = packageDirOf(input);
    if (rel === undefined) continue;
    const dir = join(root, rel);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
    const id = `${pkg.name}@${pkg.version}`;
    if (sections.has(id)) continue;
    const text = licenceText(dir);
    if (!text && !pkg.license) throw new Error(`${id} (${dir}) has neither a licence file nor a license field`);
    sections.set(id, `${id}\n${'-'.repeat(id.length)}\n${text ?? `License: ${pkg.license} (the package ships no licence file)`}\n`);
  }
  const sorted = [...sections.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, text]) => text);
  return `The credport bundle (dist/bundle/) includes the following packages, under these licences.\n\n${sorted.join('\n')}`;
}

for (const f of ['credport.js', 'main.js'])
  if (!existsSync(join(cliDir, f))) throw new Error(`${join(cliDir, f)} is missing: run tsc first (npm run build)`);
rmSync(outdir, { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // Names are not kept (esbuild renames a clashing top-level name, Certificate -> Certificate2): every
  // credport error class sets its own `name`, which is what the code compares, and keepNames would cost
  // each start a call per function.
  keepNames: false,
  absWorkingDir: root,
  external: ['@aws-sdk/*'],
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
} satisfies BuildOptions;

// main.js and its chunks: every command, the daemon and the demo, as ES modules.
const esm = await build({
  ...common,
  entryPoints: { main: join(cliDir, 'main.js') },
  outdir,
  splitting: true,
  format: 'esm',
  banner: { js: ESM_BANNER },
  // Chunks beside the entry: modules that find files from import.meta.url (version.ts: ../../package.json)
  // sit two levels below the package root, as in the compiled tree.
  chunkNames: '[name]-[hash]',
  plugins: [notBundledPlugin],
});

// The slim path, and the bin that picks it or main.js: CommonJS, which node starts sooner.
const slim = await build({
  ...common,
  entryPoints: [join(cliDir, 'fast', 'index.js')],
  outfile: join(outdir, 'slim.cjs'),
  format: 'cjs',
  banner: { js: CJS_BANNER },
  define: { 'import.meta.url': '__credportUrl' },
  plugins: [slimPlugin],
});
const bin = await build({
  ...common,
  format: 'cjs',
  entryPoints: [join(cliDir, 'credport.js')],
  outfile: join(outdir, 'credport.cjs'),
  external: [...common.external, './slim.cjs'],
  plugins: [binPlugin],
});

// The bin's earlier name: a service unit or plist written by `node dist/bundle/credport.js service
// install` names this file, and must still start after an upgrade.
writeFileSync(
  join(outdir, 'credport.js'),
  "#!/usr/bin/env node\n// The bin is credport.cjs; this name is kept for what was installed under it.\nimport './credport.cjs';\n",
);

const inputs = { ...esm.metafile.inputs, ...slim.metafile.inputs, ...bin.metafile.inputs };
writeFileSync(join(outdir, 'THIRD-PARTY-LICENSES.txt'), thirdPartyNotices({ inputs }));
