/** Opens the signer the [key] table describes. Hardware backends join here. */
import type { ResolvedConfig } from '../config/load.js';
import { FileKeySigner } from './file-signer.js';
import type { KeySigner } from './signer.js';

export function openSigner(key: ResolvedConfig['key']): KeySigner {
  switch (key.backend) {
    case 'file':
      return FileKeySigner.open(key.path);
  }
}
