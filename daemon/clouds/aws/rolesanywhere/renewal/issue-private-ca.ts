/**
 * Renewal by AWS Private CA: IssueCertificate, then GetCertificate until the certificate is ready, both
 * in the JSON 1.1 protocol (X-Amz-Target ACMPrivateCA.*) and signed with the profile's own current
 * Roles Anywhere credentials: the device renews with the identity it already has, and the role needs
 * acm-pca:IssueCertificate and acm-pca:GetCertificate on the CA. Two small signed requests through
 * boundedFetch rather than the ACM PCA SDK client: same limits as every other upstream call, and no
 * extra megabytes in the install.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { boundedFetch, DEFAULT_UPSTREAM_LIMITS } from '../../../../providers/upstream/bounded-fetch.js';
import { sanitizeCode, sanitizeMessage } from '../../../../providers/upstream/error-text.js';
import type { AwsCredentials } from '../../credentials.js';
import { amzDate } from '../../sigv4/encoding.js';
import type { CertificateIssuer } from './issuer.js';
import { RenewalError } from './renewal-error.js';
import { signHmac } from '../../sigv4/hmac.js';

export interface PrivateCaIssuerOptions {
  certificateAuthorityArn: string;
  signingAlgorithm: string;
  /** The profile's own credentials, as the daemon holds them. */
  credentials: () => Promise<AwsCredentials>;
  /** Override of https://acm-pca.<region>.amazonaws.com. */
  endpoint?: string;
  /** GetCertificate attempts while the CA is still issuing (RequestInProgressException); default 10. */
  maxPolls?: number;
  /** Pause between them, ms; default 1000. */
  pollIntervalMs?: number;
}

const SERVICE = 'ACM Private CA';

export function privateCaIssuer(opts: PrivateCaIssuerOptions): CertificateIssuer {
  const parts = opts.certificateAuthorityArn.split(':');
  const partition = parts[1] ?? 'aws';
  const region = parts[3] ?? '';
  const suffix = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  const base = new URL(`${(opts.endpoint ?? `https://acm-pca.${region}.${suffix}`).replace(/\/+$/, '')}/`);

  async function call(
    target: string,
    payload: Record<string, unknown>,
    now: number,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    let creds: AwsCredentials;
    try {
      creds = await opts.credentials();
    } catch (err) {
      throw new RenewalError('RenewalCredentialsUnavailable', `no credentials to call ${SERVICE} with: ${(err as Error).message}`);
    }
    const body = JSON.stringify(payload);
    const headers = signHmac(
      {
        method: 'POST',
        host: base.host,
        path: base.pathname,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `ACMPrivateCA.${target}` },
        body,
        amzDate: amzDate(now),
        region,
        service: 'acm-pca',
      },
      { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken },
    );
    let got: Awaited<ReturnType<typeof boundedFetch>>;
    try {
      got = await boundedFetch(
        base.href,
        { method: 'POST', headers, body },
        { service: SERVICE, limits: DEFAULT_UPSTREAM_LIMITS, ...(signal ? { signal } : {}) },
      );
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'NetworkError';
      throw new RenewalError(
        'CertificateAuthorityUnreachable',
        `${SERVICE} ${target}: ${code}: ${sanitizeMessage((err as Error).message)}`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(got.body.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const obj = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    if (got.status !== 200) {
      // JSON 1.1 errors: {"__type": "ns#Code", "message": ...}; the header carries the code too.
      const rawType = String(obj?.__type ?? got.headers.get('x-amzn-errortype') ?? `HTTP${got.status}`);
      const code = sanitizeCode(rawType.split('#').at(-1)?.split(':')[0] ?? rawType);
      const message = sanitizeMessage(obj?.message ?? obj?.Message ?? '');
      throw new RenewalError(code, `${SERVICE} ${target} refused (${got.status} ${code})${message ? `: ${message}` : ''}`);
    }
    if (obj === undefined) throw new RenewalError('MalformedResponse', `${SERVICE} ${target} answered 200 with something that is not JSON`);
    return obj;
  }

  return {
    method: 'aws-private-ca',
    source: opts.certificateAuthorityArn,
    async issue({ csrPem, now, validityMs, signal }) {
      const issued = await call(
        'IssueCertificate',
        {
          CertificateAuthorityArn: opts.certificateAuthorityArn,
          Csr: Buffer.from(csrPem, 'utf8').toString('base64'),
          SigningAlgorithm: opts.signingAlgorithm,
          // ABSOLUTE (seconds since the epoch) says any lifetime, minutes included.
          Validity: { Type: 'ABSOLUTE', Value: Math.floor((now + validityMs) / 1000) },
          IdempotencyToken: randomUUID().replace(/-/g, '').slice(0, 32),
        },
        now,
        signal,
      );
      const certificateArn = issued.CertificateArn;
      if (typeof certificateArn !== 'string' || certificateArn === '') {
        throw new RenewalError('MalformedResponse', `${SERVICE} IssueCertificate answered without a CertificateArn`);
      }
      const polls = Math.max(1, opts.maxPolls ?? 10);
      for (let i = 1; ; i++) {
        try {
          const got = await call(
            'GetCertificate',
            { CertificateAuthorityArn: opts.certificateAuthorityArn, CertificateArn: certificateArn },
            now,
            signal,
          );
          if (typeof got.Certificate !== 'string')
            throw new RenewalError('MalformedResponse', `${SERVICE} GetCertificate answered without a Certificate`);
          return `${got.Certificate}\n${typeof got.CertificateChain === 'string' ? got.CertificateChain : ''}\n`;
        } catch (err) {
          // Issuing takes the CA a moment; until then GetCertificate says so.
          if (!(err instanceof RenewalError) || err.code !== 'RequestInProgressException' || i >= polls) throw err;
          await sleep(opts.pollIntervalMs ?? 1000, undefined, signal ? { signal } : {});
        }
      }
    },
  };
}
