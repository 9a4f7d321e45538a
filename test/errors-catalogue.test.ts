/**
 * One error catalogue: every code credport answers or records with a literal in the source is in
 * daemon/errors.ts, with the status the catalogue gives it, and docs/errors.md is generated from it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PROVIDER_ERRORS, SERVER_ERRORS } from '../daemon/errors.js';
import { ERRORS_PATH, renderErrorsReference } from '../scripts/gen-errors-doc.js';

const SRC = fileURLToPath(new URL('../../daemon', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = sources(SRC).map((p) => ({ p: p.slice(SRC.length + 1), text: readFileSync(p, 'utf8') }));

t.test('every ProviderError credport raises with a literal code is catalogued', async (t) => {
  let seen = 0;
  for (const { p, text } of files) {
    for (const m of text.matchAll(/new ProviderError\(\s*'([A-Za-z]+)'/g)) {
      seen++;
      t.ok(m[1]! in PROVIDER_ERRORS, `${p}: ProviderError('${m[1]}') is in PROVIDER_ERRORS`);
    }
  }
  t.ok(seen > 20, `the scan found the provider errors (${seen})`);
});

t.test('every endpoint error body names a catalogued code, through serverError', async (t) => {
  const used = new Set<string>();
  for (const { p, text } of files) {
    for (const m of text.matchAll(/serverError\(\s*'([A-Za-z]+)'/g)) {
      used.add(m[1]!);
      t.ok(m[1]! in SERVER_ERRORS, `${p}: serverError('${m[1]}') is catalogued`);
    }
    // A body built by hand would bypass the catalogue's status.
    t.notMatch(text.replace(/Code: 'Success'/g, ''), /\bCode: '[A-Za-z]+'/, `${p}: no {Code: '...'} literal outside the catalogue`);
  }
  t.same(
    Object.keys(SERVER_ERRORS).filter((c) => !used.has(c)),
    [],
    'every catalogued code is answered somewhere',
  );
});

t.test('docs/errors.md is generated from the catalogue', async (t) => {
  t.equal(readFileSync(ERRORS_PATH, 'utf8'), renderErrorsReference(), 'run `npm run build && npm run gen-docs` and commit docs/errors.md');
});
