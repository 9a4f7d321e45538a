/**
 * node:crypto, loaded on first use. The CLI's slim path loads secure-file and instance-lock only to
 * read a file, and they need crypto only to write one (random temporary names, a lock instance id);
 * loading it is some 7 ms of a `credport auth`.
 */
import { createRequire } from 'node:module';

type NodeCrypto = typeof import('node:crypto');

let loaded: NodeCrypto | undefined;

export function nodeCrypto(): NodeCrypto {
  loaded ??= createRequire(import.meta.url)('node:crypto') as NodeCrypto;
  return loaded;
}
