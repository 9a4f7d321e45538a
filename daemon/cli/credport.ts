#!/usr/bin/env node
/**
 * Executable entry point (package.json "bin"); everything else lives in main.ts.
 *
 * No top-level await: the bundle builds this file as CommonJS (scripts/bundle.ts), as node starts a
 * CommonJS entry some 8 ms sooner than an ES module one, and `credport auth` starts once per AWS CLI call.
 */

import { enableCompileCache } from './compile-cache.js';

// Before anything else loads, so that it all comes from the cache (in this user's own directory).
enableCompileCache();

// Imported after the cache is on (a static import would be loaded before this module runs).
async function run(argv: string[]): Promise<number> {
  const { leadingGlobals } = await import('./globals.js');
  const word = leadingGlobals(argv).rest[0];
  if (word === 'auth' || word === 'env' || word === 'status') {
    // What a running daemon answers skips the config's parse and validation when it can (cli/fast/).
    const { runFast, directIo } = await import('./fast/index.js');
    const code = await runFast(argv, directIo);
    if (code !== undefined) return code;
  }
  const { main } = await import('./main.js');
  return main(argv);
}

// A crash still exits 1 (credential_process callers go by the exit code), whatever
// --unhandled-rejections says.
run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
