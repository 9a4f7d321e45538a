/**
 * node:crypto, loaded on first use. The CLI's slim path loads secure-file, instance-lock and
 * server/token only to read a file, and those need crypto only to write one (random names, a new
 * token) or, in the daemon, to compare tokens; loading it is some 7 ms of a `credport auth`.
 */
import { createRequire } from 'node:module';

type NodeCrypto = typeof import('node:crypto');

let loaded: NodeCrypto | undefined;

export function nodeCrypto(): NodeCrypto {
  loaded ??= createRequire(import.meta.url)('node:crypto') as NodeCrypto;
  return loaded;
}
