/** Opens the signer the [key] table describes. Hardware backends join here. */
import type { ResolvedConfig } from '../config/load.js';
import { FileKeySigner } from './file-signer.js';
import type { KeySigner } from './signer.js';

export async function openSigner(key: ResolvedConfig['key']): Promise<KeySigner> {
  switch (key.backend) {
    case 'file':
      return FileKeySigner.open(key.path);
  }
}
