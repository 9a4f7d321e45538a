#!/usr/bin/env node
/**
 * Makes every package.json "bin" entry executable after a build (`npm run build`'s postbuild).
 *
 * tsc writes new files 0644. A clone installed with `npm install -g .` or `npm link` runs
 * dist/ in place, so without this a rebuild leaves `credport` failing with "Permission denied".
 * Execute bits are added where read bits are, as chmod +x would under the usual umask.
 * Usage: node scripts/chmod-bin.mjs [PACKAGE_ROOT]   (default: this checkout)
 */
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});

for (const rel of bins) {
  const file = join(root, rel);
  const mode = statSync(file).mode & 0o7777;
  chmodSync(file, mode | ((mode & 0o444) >> 2));
}
