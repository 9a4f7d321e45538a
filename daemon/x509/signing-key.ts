/**
 * The key that signs CreateSession requests. SigV4-X509 names two algorithms and the digest is SHA-256
 * for both, whatever the key size or curve: aws_signing_helper signs with SHA-256 for every EC key
 * (P-384 included) and calls the result AWS4-X509-ECDSA-SHA256, and the service verifies it that way.
 *
 * Two adapters: the daemon's own device key (any KeySigner backend, ES256 raw r||s turned into DER),
 * and a private key file in any of the forms aws_signing_helper reads.
 */
import { constants, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import type { KeySigner } from '../keys/signer.js';
import { readSecretFile } from '../util/secure-file.js';
import { rawToDer } from '../keys/der.js';

export type X509SigningAlgorithm = 'AWS4-X509-ECDSA-SHA256' | 'AWS4-X509-RSA-SHA256';

export interface X509SigningKey {
  /** Follows the key: ECDSA for EC keys of any supported curve, RSA for RSA keys. */
  readonly algorithm: X509SigningAlgorithm;
  /** ECDSA: the DER signature over SHA-256(data). RSA: PKCS#1 v1.5 with SHA-256. */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** Where the key lives, for humans and logs. Never secret. */
  describe(): string;
  /** The public key as DER SubjectPublicKeyInfo, to check it against the certificate before signing. */
  publicKeySpki?(): Uint8Array;
  /** True when every signature needs a person present (Touch ID, PIN pad): no unattended refresh. */
  readonly userPresence?: boolean;
}

/** A key file that cannot be used. Messages name the file and the problem, never the key's contents. */
export class X509KeyError extends Error {
  override readonly name = 'X509KeyError';
}

/**
 * A key credport holds, whatever backend: ES256 signers give raw r||s, turned into DER here; RS256
 * signers give PKCS#1 v1.5, which X.509 and SigV4-X509 take as it is.
 */
export function fromKeySigner(signer: KeySigner): X509SigningKey {
  // The public key never changes for a signer, so its SPKI is computed once.
  const spki = new Uint8Array(createPublicKey({ key: { ...signer.publicJwk() }, format: 'jwk' }).export({ type: 'spki', format: 'der' }));
  const where = signer.describe();
  const rsa = signer.algorithm === 'RS256';
  return {
    algorithm: rsa ? 'AWS4-X509-RSA-SHA256' : 'AWS4-X509-ECDSA-SHA256',
    userPresence: where.userPresence,
    async sign(data) {
      const signature = await signer.sign(data);
      return rsa ? signature : rawToDer(signature);
    },
    describe() {
      return `${where.backend} key ${where.location}`;
    },
    publicKeySpki() {
      return spki;
    },
  };
}

interface LoadedKey {
  key: KeyObject;
  algorithm: X509SigningAlgorithm;
  spki: Uint8Array;
  stamp: string;
}

const SUPPORTED_CURVES = new Set(['prime256v1', 'secp384r1']);

function stampOf(path: string): string {
  // Inode, size and both times: a key replaced by rename or rewritten in place both show.
  const st = statSync(path);
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

function loadKeyFile(path: string, passphrase: string | Uint8Array | undefined): LoadedKey {
  const read = (): Buffer => readSecretFile(path, 'private key file', 'point private_key at the key that belongs to the certificate');
  // Stamp before reading: a change racing the read then shows up as a change next time.
  let stamp: string;
  try {
    stamp = stampOf(path);
  } catch (err) {
    read(); // explains a missing or unreadable file the same way as every other secret file
    throw err;
  }
  const pem = read();
  const text = pem.toString('latin1');
  const encrypted = text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type:\s*4,ENCRYPTED/.test(text);
  if (encrypted && (passphrase === undefined || passphrase.length === 0)) {
    throw new X509KeyError(`private key file ${path} is encrypted; configure its passphrase (from a file or an environment variable)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: pem,
      format: 'pem',
      // An empty passphrase would make OpenSSL prompt on a terminal; a plain key needs none.
      ...(encrypted && passphrase !== undefined
        ? { passphrase: typeof passphrase === 'string' ? passphrase : Buffer.from(passphrase) }
        : {}),
    });
  } catch {
    // OpenSSL's message can quote the input; say only what kind of problem it is.
    throw new X509KeyError(
      encrypted
        ? `private key file ${path} could not be decrypted: wrong passphrase or unsupported encryption`
        : `private key file ${path} is not a PEM private key (PKCS#1 RSA, SEC1 EC or PKCS#8)`,
    );
  }
  let algorithm: X509SigningAlgorithm;
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048 || bits > 4096) throw new X509KeyError(`private key file ${path} holds an RSA-${bits} key; use 2048 to 4096 bits`);
    algorithm = 'AWS4-X509-RSA-SHA256';
  } else if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
    if (!SUPPORTED_CURVES.has(curve)) throw new X509KeyError(`private key file ${path} holds an EC key on ${curve}; use P-256 or P-384`);
    algorithm = 'AWS4-X509-ECDSA-SHA256';
  } else {
    throw new X509KeyError(
      `private key file ${path} holds a ${key.asymmetricKeyType ?? 'unknown'} key; Roles Anywhere signs with RSA or ECDSA`,
    );
  }
  const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  return { key, algorithm, spki, stamp };
}

/**
 * A private key file: PEM PKCS#1 RSA, SEC1 EC, PKCS#8 (RSA, EC P-256/P-384) or encrypted PKCS#8. The
 * file must be 0600 and ours. The passphrase comes from the caller (a file or an environment variable,
 * never the command line). When the file changes on disk (a renewed certificate usually comes with a new
 * key) it is read again before the next signature.
 */
export function fromKeyFile(path: string, passphrase?: string | Uint8Array): X509SigningKey {
  let current = loadKeyFile(path, passphrase);
  const fresh = (): LoadedKey => {
    let stamp: string;
    try {
      stamp = stampOf(path);
    } catch {
      throw new X509KeyError(`private key file ${path} is no longer readable`);
    }
    if (stamp !== current.stamp) current = loadKeyFile(path, passphrase);
    return current;
  };
  return {
    get algorithm() {
      return current.algorithm;
    },
    async sign(data) {
      const { key, algorithm } = fresh();
      return new Uint8Array(
        algorithm === 'AWS4-X509-RSA-SHA256'
          ? cryptoSign('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING })
          : cryptoSign('sha256', data, { key, dsaEncoding: 'der' }),
      );
    },
    describe() {
      return `key file ${path}`;
    },
    publicKeySpki() {
      return fresh().spki;
    },
  };
}
