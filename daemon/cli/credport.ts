#!/usr/bin/env node
/** Executable entry point (package.json "bin"); everything else lives in main.ts. */
import module from 'node:module';

// Node's compile cache (22.1 and later) keeps the compiled code of every module between runs: `credport
// auth` starts for each AWS CLI call. Older Node has no such call and starts as before.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

// Imported after the cache is on (a static import would be loaded before this module runs).
const { main } = await import('./main.js');
process.exitCode = await main(process.argv.slice(2));
