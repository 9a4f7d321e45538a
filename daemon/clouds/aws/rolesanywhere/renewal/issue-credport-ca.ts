/** Renewal by the built-in CA directory ('credport ca init'): for a single host or a lab. */
import { CaError, issueCertificate } from '../../../../x509/ca.js';
import type { CertificateIssuer } from './issuer.js';
import { RenewalError } from './renewal-error.js';

export function credportCaIssuer(caDir: string): CertificateIssuer {
  return {
    method: 'credport-ca',
    source: `the CA in ${caDir}`,
    async issue({ csrPem, now, validityMs }) {
      try {
        const r = await issueCertificate({ caDir, csrPem, days: 1, validityMs, now: () => now });
        return r.certificatePem;
      } catch (err) {
        if (err instanceof CaError) throw new RenewalError('CertificateAuthorityFailed', `the CA in ${caDir}: ${err.message}`);
        const code = (err as NodeJS.ErrnoException).code;
        throw new RenewalError('CertificateAuthorityFailed', `the CA in ${caDir}: ${code ?? (err as Error).message}`);
      }
    },
  };
}
