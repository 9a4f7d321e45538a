#!/usr/bin/env node
/** Executable entry point (package.json "bin"); everything else lives in main.ts. */
import { main } from './main.js';

// credport supports Node 20.19+ and says so in its docs; the SDK's notice about its
// own future Node support would otherwise open every daemon log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await main(process.argv.slice(2));
