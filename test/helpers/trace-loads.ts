/**
 * `node --import <this file's .js>`: appends the URL of every ES module the process loads to the file
 * named by $LOADED_LOG (through trace-loads-hooks.ts), and at exit every CommonJS module in the cache
 * (the npm packages credport uses are CommonJS, even when imported from ESM) and node's own internal
 * modules as node names them ("NativeModule internal/deps/undici/undici": fetch's implementation).
 * Tests read it to prove which path a command took, or what a process did without, never from time.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

register(new URL('./trace-loads-hooks.js', import.meta.url));
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const log = process.env.LOADED_LOG;
  const internal = (process as unknown as { moduleLoadList?: string[] }).moduleLoadList ?? [];
  if (log) appendFileSync(log, `${[...Object.keys(cache), ...internal].join('\n')}\n`);
});

/** The entries a traced process wrote to `log`. */
export function readLoaded(log: string): string[] {
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}
