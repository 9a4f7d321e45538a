#!/usr/bin/env node
/** Executable entry point (package.json "bin"); everything else lives in main.ts. */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
