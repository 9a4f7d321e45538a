/**
 * Putting a checked certificate where the profile reads it. Files are replaced atomically (a temporary
 * file beside them, then a rename: a reader sees the old file or the new one, never half of either),
 * mode 0644, and the directory keeps its other contents; the provider notices the change at its next
 * CreateSession. A certificate on the PKCS#11 token is written to the token next to the key, and the
 * old one removed there.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../../../util/secure-file.js';
import type { RenewedChain } from './check-renewed.js';
import { RenewalError } from './renewal-error.js';

function pem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

function unchanged(path: string, text: string): boolean {
  try {
    return readFileSync(path, 'utf8') === text;
  } catch {
    return false;
  }
}

function write(path: string, text: string): void {
  try {
    writeFileAtomic(path, text, 0o644);
  } catch (err) {
    throw new RenewalError(
      'CertificateNotWritten',
      `cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/**
 * Certificate file, and chain file when the profile has one. Without a chain file the intermediates
 * follow the leaf in the certificate file (a fullchain.pem). The chain file is written first: the
 * provider reads both at its next request, and a new chain with the old leaf still validates when the
 * CA is unchanged, which is the usual case.
 */
export function fileInstaller(certificatePath: string, chainPath?: string): (renewed: RenewedChain) => Promise<void> {
  return async (renewed) => {
    if (chainPath !== undefined) {
      const chainText = renewed.intermediates.map(pem).join('');
      if (chainText !== '' && !unchanged(chainPath, chainText)) write(chainPath, chainText);
      write(certificatePath, pem(renewed.leaf));
    } else {
      write(certificatePath, [renewed.leaf, ...renewed.intermediates].map(pem).join(''));
    }
  };
}

/** The token: the leaf next to the key (intermediates go to the chain file when there is one). */
export function tokenInstaller(store: (der: Uint8Array) => Promise<void>, chainPath?: string): (renewed: RenewedChain) => Promise<void> {
  return async (renewed) => {
    if (chainPath !== undefined) {
      const chainText = renewed.intermediates.map(pem).join('');
      if (chainText !== '' && !unchanged(chainPath, chainText)) write(chainPath, chainText);
    }
    try {
      await store(renewed.leaf);
    } catch (err) {
      throw new RenewalError(
        (err as { code?: string }).code ?? 'CertificateNotWritten',
        `writing the certificate to the token: ${(err as Error).message}`,
      );
    }
  };
}
