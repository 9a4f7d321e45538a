/**
 * Bundles the compiled CLI (dist/daemon/cli/credport.js, from tsc) into dist/bundle/, what the package's
 * `bin` runs. Part of `npm run build`.
 *
 * Why: every `credport auth` is a new process, and a daemon's start is mostly node's module loader. From
 * the compiled tree, the slim CLI path resolves, reads and links ~30 ES modules and the daemon ~150 plus
 * fastify's and pino's CommonJS files; bundled, each is a handful of files. Code splitting keeps every
 * dynamic import() a separate chunk, so what a command does not use is still never loaded
 * (test/provider-modules.test.ts and test/cli-fast-path.test.ts check that on the compiled tree, whose
 * import graph the chunks follow).
 *
 * Left outside the bundle: the optional AWS SDK clients of the admin commands (peer dependencies, found
 * at run time or reported missing) and the native addon (loaded by path, keys/native/addon.ts).
 * The licences of the bundled packages go beside it, in THIRD-PARTY-LICENSES.txt.
 *
 * Usage: node dist/scripts/bundle.js [PACKAGE_ROOT]   (default: this checkout)
 */
import { build, type Metafile } from 'esbuild';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
const outdir = join(root, 'dist', 'bundle');

// CommonJS packages inside an ES module bundle still call require() for node's built-ins.
const BANNER = "import { createRequire as __credportRequire } from 'node:module'; const require = __credportRequire(import.meta.url);";

/** `node_modules/a/b.js` -> `a`; `node_modules/@s/p/x.js` -> `@s/p` (the innermost node_modules counts). */
function packageOf(input: string): string | undefined {
  const at = input.lastIndexOf('node_modules/');
  if (at === -1) return undefined;
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/** The package directory of a bundled input (the innermost node_modules/NAME). */
function packageDir(input: string, name: string): string {
  const at = input.lastIndexOf(`node_modules/${name}/`);
  return join(root, input.slice(0, at + `node_modules/${name}`.length));
}

function licenceText(dir: string): string | undefined {
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  return file ? readFileSync(join(dir, file), 'utf8').trim() : undefined;
}

function thirdPartyNotices(meta: Metafile): string {
  const seen = new Map<string, string>();
  for (const input of Object.keys(meta.inputs)) {
    const name = packageOf(input);
    if (name && !seen.has(name)) seen.set(name, packageDir(input, name));
  }
  const sections = [...seen.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, dir]) => {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string; license?: string };
      if (!pkg.license && !licenceText(dir)) throw new Error(`${name} (${dir}) has neither a licence file nor a license field`);
      const text = licenceText(dir) ?? `License: ${pkg.license} (the package ships no licence file)`;
      return `${name}@${pkg.version ?? '?'}\n${'-'.repeat(name.length + (pkg.version?.length ?? 1) + 1)}\n${text}\n`;
    });
  return `The credport bundle (dist/bundle/) includes the following packages, under these licences.\n\n${sections.join('\n')}`;
}

const entry = join(root, 'dist', 'daemon', 'cli', 'credport.js');
if (!existsSync(entry)) throw new Error(`${entry} is missing: run tsc first (npm run build)`);
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: [entry],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Error classes and functions keep their names (err.name, stack frames) where bundling renames clashes.
  keepNames: false,
  external: ['@aws-sdk/*'],
  banner: { js: BANNER },
  metafile: true,
  logLevel: 'warning',
  // Chunks beside the entry: modules that find files from import.meta.url (version.ts: ../../package.json)
  // sit two levels below the package root, as in the compiled tree.
  chunkNames: '[name]-[hash]',
  legalComments: 'none',
});
writeFileSync(join(outdir, 'THIRD-PARTY-LICENSES.txt'), thirdPartyNotices(result.metafile));
