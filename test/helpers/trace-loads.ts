/**
 * `node --import <this file's .js>`: appends the URL of every ES module the process loads to the file
 * named by $LOADED_LOG (through trace-loads-hooks.ts), and at exit every CommonJS module in the cache.
 * Tests read it to prove which path a command took.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

register(new URL('./trace-loads-hooks.js', import.meta.url));
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const log = process.env.LOADED_LOG;
  if (log) appendFileSync(log, `${Object.keys(cache).join('\n')}\n`);
});
