/**
 * Preloaded into a credport process (NODE_OPTIONS=--import=<this file's URL>): when the process exits,
 * writes what it loaded to $CREDPORT_TEST_LOADED_OUT as JSON: every CommonJS file (the npm packages
 * credport uses are CommonJS, even when imported from ESM) and node's own internal modules (fetch's
 * undici is one). Lets a test prove that a path does without a package, without timing anything.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const out = process.env.CREDPORT_TEST_LOADED_OUT;
if (out) {
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const internal = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
    writeFileSync(out, JSON.stringify({ cjs: Object.keys(require.cache), internal }));
  });
}

export interface LoadedModules {
  cjs: string[];
  internal: string[];
}
