#!/usr/bin/env node
/** Executable entry point (package.json "bin"); everything else lives in main.ts. */
import module from 'node:module';

// Node's compile cache (22.1 and later) keeps the compiled code of every module between runs: `credport
// auth` starts for each AWS CLI call. Older Node has no such call and starts as before.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

// Imported after the cache is on (a static import would be loaded before this module runs).
const argv = process.argv.slice(2);
const { leadingGlobals } = await import('./globals.js');
const word = leadingGlobals(argv).rest[0];
let code: number | undefined;
if (word === 'auth' || word === 'env' || word === 'status') {
  // What a running daemon answers skips the config's parse and validation when it can (cli/fast/).
  const [{ runFast }, { directIo }] = await Promise.all([import('./fast/run.js'), import('./io.js')]);
  code = await runFast(argv, directIo);
}
if (code === undefined) {
  const { main } = await import('./main.js');
  code = await main(argv);
}
process.exitCode = code;
