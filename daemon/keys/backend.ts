/** What a key backend provides; each backend is one folder under keys/ and one line in keys/registry.ts. */
import type { ResolvedKey } from '../config/load.js';
import type { KeySigner } from './signer.js';

/** What the opener knows beyond the [key] table. */
export interface KeyOpenContext {
  /** The daemon's clock (tests drive it); backends that space retries in time use it. */
  now?: () => number;
}

export interface KeyBackend<K extends ResolvedKey = ResolvedKey> {
  readonly name: K['backend'];
  open(key: K, context?: KeyOpenContext): Promise<KeySigner>;
  /** Creates the key; an existing key is an error (credport never replaces a key). */
  create(key: K): Promise<KeySigner>;
  /** Destroys the key. There is no undo: the CLI asks first. */
  remove(key: K): Promise<void>;
  /** Whether the key exists, without opening hardware sessions where that can be avoided. */
  exists?(key: K): Promise<boolean>;
  /** Where the key lives, from config alone (no hardware access). */
  location(key: K): string;
}
