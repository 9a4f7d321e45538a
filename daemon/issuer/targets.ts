/**
 * Where an issuer's documents are kept: an export directory (locked while changed) or an S3 bucket
 * (changed by conditional writes, then invalidated in CloudFront). Publish, revoke and key rotation
 * all change the JWKS through `changeIssuer`, so each gets the same guarantees on either kind.
 */
import { resolve } from 'node:path';
import { loadOptional } from '../cli/optional-package.js';
import { type Jwks, updateLocalIssuer } from '../identity/issuer-documents.js';
import { formatS3Location, parseS3Location, type S3Location } from './s3-location.js';

export type IssuerTarget = { kind: 'dir'; dir: string } | { kind: 's3'; location: S3Location };

export function parseTarget(text: string): IssuerTarget {
  if (text.startsWith('s3://')) return { kind: 's3', location: parseS3Location(text) };
  return { kind: 'dir', dir: resolve(text) };
}

export function describeTarget(t: IssuerTarget): string {
  return t.kind === 'dir' ? t.dir : formatS3Location(t.location);
}

export interface ChangeOptions {
  region?: string;
  /** Another S3 endpoint (S3-compatible stores, tests). */
  endpoint?: string;
  /** The CloudFront distribution to invalidate after an S3 change. */
  distributionId?: string;
  cloudfrontEndpoint?: string;
}

export interface ChangeResult {
  where: string;
  keyCount: number;
  changed: boolean;
  /** Conditional writes tried (S3); 1 without contention. */
  attempts: number;
  invalidation?: string;
  /** Set when the documents were written but the invalidation failed: the cache expires on its own. */
  warning?: string;
}

export async function changeIssuer(
  target: IssuerTarget,
  issuer: string,
  change: (jwks: Jwks | undefined) => Jwks,
  o: ChangeOptions = {},
): Promise<ChangeResult> {
  if (target.kind === 'dir') {
    const r = updateLocalIssuer(target.dir, issuer, change);
    return { where: target.dir, keyCount: r.keyCount, changed: r.changed, attempts: 1 };
  }
  // The S3 and CloudFront SDKs are loaded here only: no other command pays for them. Both before any
  // write, so a missing one changes nothing.
  const where = formatS3Location(target.location);
  const { openS3Issuer } = await loadOptional('@aws-sdk/client-s3', `writing the issuer to ${where}`, () => import('./s3-issuer.js'));
  const cloudfront = o.distributionId
    ? await loadOptional(
        '@aws-sdk/client-cloudfront',
        `invalidating CloudFront distribution ${o.distributionId}`,
        () => import('./cloudfront-invalidate.js'),
      )
    : undefined;
  const store = openS3Issuer(target.location, {
    ...(o.region ? { region: o.region } : {}),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  });
  try {
    const r = await store.update(issuer, change);
    const result: ChangeResult = { where: store.describe(), keyCount: r.jwks.keys.length, changed: r.changed, attempts: r.attempts };
    if ((r.changed || r.discoveryWritten) && o.distributionId && cloudfront) {
      const { invalidate, invalidationPaths } = cloudfront;
      try {
        result.invalidation = await invalidate(o.distributionId, invalidationPaths(issuer, r.paths), o.cloudfrontEndpoint);
      } catch (err) {
        result.warning = (err as Error).message;
      }
    }
    return result;
  } finally {
    store.client.destroy();
  }
}
