/**
 * The `file` key backend: a P-256 PKCS#8 PEM on disk, for machines with no
 * hardware token. It is the weakest backend, so it is strict about the file.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createSecretFile, readSecretFile } from '../../util/secure-file.js';
import { ecPublicJwk, jwkThumbprint } from '../jwk.js';
import type { EcPublicJwk, KeyDescription, KeySigner } from '../signer.js';

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

export class FileKeySigner implements KeySigner {
  readonly algorithm = 'ES256' as const;
  readonly thumbprint: string;
  readonly #jwk: EcPublicJwk;

  private constructor(
    private readonly path: string,
    private readonly key: KeyObject,
  ) {
    this.#jwk = ecPublicJwk(createPublicKey(key));
    this.thumbprint = jwkThumbprint(this.#jwk);
  }

  /** Loads and checks the key file; a group/world-readable file is refused. */
  static open(path: string): FileKeySigner {
    const pem = readSecretFile(path, 'key file', "create one with 'credport init'");
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      // The parser's message may quote the input, so it is not passed on.
      throw new KeyFileError(`key file ${path} is not a PEM private key`);
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new KeyFileError(`key file ${path} holds a ${key.asymmetricKeyType ?? 'unknown'} key; credport needs an EC P-256 key`);
    }
    return new FileKeySigner(path, key);
  }

  /** Creates a new key file (0600, never overwriting) and returns its signer. */
  static create(path: string): FileKeySigner {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
    try {
      createSecretFile(path, pem);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new KeyFileError(`key file ${path} already exists; credport never overwrites a key`);
      }
      throw err;
    }
    return new FileKeySigner(path, privateKey);
  }

  publicJwk(): EcPublicJwk {
    return { ...this.#jwk };
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return cryptoSign('sha256', data, { key: this.key, dsaEncoding: 'ieee-p1363' });
  }

  describe(): KeyDescription {
    return { backend: 'file', location: this.path, userPresence: false };
  }

  async close(): Promise<void> {
    // Nothing to release: the KeyObject is freed with the process.
  }
}
