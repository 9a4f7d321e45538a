// A throwaway certificate authority and a server certificate for 127.0.0.1, ::1 and localhost, made at
// every start: MSAL and WorkloadIdentityCredential insist on https, so the Entra emulator serves it,
// and a test trusts the CA through NODE_EXTRA_CA_CERTS (Node) or REQUESTS_CA_BUNDLE (Python).

import { KeyObject, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface TestTls {
  /** PEM of the CA to trust. */
  caPem: string;
  /** PEM of the server's certificate followed by the CA's. */
  certPem: string;
  /** PKCS#8 PEM of the server's private key. */
  keyPem: string;
}

const serial = (): string =>
  Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');

export async function makeTestTls(now: number = Date.now()): Promise<TestTls> {
  const notBefore = new Date(now - DAY_MS);
  const notAfter = new Date(now + 7 * DAY_MS);
  const caKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=credport emulator test CA',
    notBefore,
    notAfter,
    keys: caKeys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const serverKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=localhost',
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[0]['publicKey'],
    signingKey: caKeys.privateKey as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[0]['publicKey'],
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
      ]),
    ],
  });
  // node:crypto writes the PEM: no hand-made armour around key bytes.
  const keyPem = KeyObject.from(serverKeys.privateKey).export({ format: 'pem', type: 'pkcs8' }).toString();
  const caPem = ca.toString('pem');
  return { caPem: `${caPem}\n`, certPem: `${server.toString('pem')}\n${caPem}\n`, keyPem };
}
