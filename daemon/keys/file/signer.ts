/**
 * The `file` key backend: a PKCS#8 PEM on disk, for machines with no hardware token. The device key
 * ([key]) is P-256; the optional [rsa_key] is RSA, for clouds that accept only RS256 (Entra ID). It is
 * the weakest backend, so it is strict about the file.
 */
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createSecretFile, readSecretFile } from '../../util/secure-file.js';
import { jwkThumbprint, MAX_RSA_BITS, MIN_RSA_BITS, publicJwkOf } from '../jwk.js';
import type { KeyAlgorithm, KeyDescription, KeySigner, PublicJwk } from '../signer.js';

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

/** New RSA keys: the size Entra ID and every verifier accept, quick to sign with. */
const NEW_RSA_BITS = 2048;

const WANTED: Record<KeyAlgorithm, string> = {
  ES256: 'an EC P-256 key',
  RS256: `an RSA key of ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`,
};

function fits(key: KeyObject, algorithm: KeyAlgorithm): boolean {
  if (algorithm === 'ES256') return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  return key.asymmetricKeyType === 'rsa' && bits >= MIN_RSA_BITS && bits <= MAX_RSA_BITS;
}

export class FileKeySigner implements KeySigner {
  readonly algorithm: KeyAlgorithm;
  readonly thumbprint: string;
  readonly #jwk: PublicJwk;

  private constructor(
    private readonly path: string,
    private readonly key: KeyObject,
  ) {
    const { jwk, algorithm } = publicJwkOf(createPublicKey(key));
    this.#jwk = jwk;
    this.algorithm = algorithm;
    this.thumbprint = jwkThumbprint(this.#jwk);
  }

  /** Loads and checks the key file; a group/world-readable file, or a key of another kind, is refused. */
  static open(path: string, algorithm: KeyAlgorithm = 'ES256'): FileKeySigner {
    const pem = readSecretFile(path, 'key file', `create one with 'credport init${algorithm === 'RS256' ? ' --rsa-key' : ''}'`);
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      // The parser's message may quote the input, so it is not passed on.
      throw new KeyFileError(`key file ${path} is not a PEM private key`);
    }
    if (!fits(key, algorithm)) {
      const bits = key.asymmetricKeyDetails?.modulusLength;
      const found = `${bits ? `${bits}-bit ` : ''}${key.asymmetricKeyType ?? 'unknown'}`;
      throw new KeyFileError(`key file ${path} holds a ${found} key; credport needs ${WANTED[algorithm]} here`);
    }
    return new FileKeySigner(path, key);
  }

  /** Creates a new key file (0600, never overwriting) and returns its signer: P-256, or RSA-2048 for RS256. */
  static create(path: string, algorithm: KeyAlgorithm = 'ES256'): FileKeySigner {
    const { privateKey } =
      algorithm === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: NEW_RSA_BITS, publicExponent: 0x10001 })
        : generateKeyPairSync('ec', { namedCurve: 'P-256' });
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

  publicJwk(): PublicJwk {
    return { ...this.#jwk };
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    if (this.algorithm === 'RS256') return cryptoSign('sha256', data, { key: this.key, padding: constants.RSA_PKCS1_PADDING });
    return cryptoSign('sha256', data, { key: this.key, dsaEncoding: 'ieee-p1363' });
  }

  describe(): KeyDescription {
    return { backend: 'file', location: this.path, userPresence: false };
  }

  async close(): Promise<void> {
    // Nothing to release: the KeyObject is freed with the process.
  }
}
