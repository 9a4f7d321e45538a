/** docs/config-reference.md is generated from the schema; a stale copy fails here. */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { REFERENCE_PATH, renderConfigReference } from '../scripts/gen-config-docs.js';

t.test('config reference is up to date with the schema', async (t) => {
  t.equal(
    readFileSync(REFERENCE_PATH, 'utf8'),
    renderConfigReference(),
    'run `npm run build && npm run gen-docs` and commit docs/config-reference.md',
  );
});
