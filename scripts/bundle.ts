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
function thirdPartyNotices(meta: Metafile): string {
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
  // Names are not kept (esbuild renames a clashing top-level name, Certificate -> Certificate2): every
  // credport error class sets its own `name`, which is what the code compares, and keepNames would cost
  // each start a call per function.
  keepNames: false,
  absWorkingDir: root,
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
