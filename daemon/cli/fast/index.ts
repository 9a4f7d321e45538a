/** What the entry (cli/credport.ts) takes from the slim path; in the bundle, this is slim.cjs. */
export { directIo } from '../io.js';
export { runFast } from './run.js';
