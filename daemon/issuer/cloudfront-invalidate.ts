/**
 * Tells CloudFront to drop its copies of the issuer documents after a change, so STS fetches the
 * new JWKS from the origin instead of waiting out the cache. Loaded only by the publishing commands.
 */
import { randomUUID } from 'node:crypto';
import { CloudFrontClient, CreateInvalidationCommand } from '@aws-sdk/client-cloudfront';
import { BoundedSdkHandler } from '../providers/upstream/sdk-handler.js';
import { sanitizeCode, sanitizeMessage } from '../providers/upstream/error-text.js';

export class InvalidationError extends Error {
  override readonly name = 'InvalidationError';
}

/** CloudFront serves the issuer's documents at the issuer URL's path, whatever the origin path is. */
export function invalidationPaths(issuer: string, relatives: string[]): string[] {
  const base = new URL(issuer).pathname.replace(/\/+$/, '');
  return relatives.map((r) => `${base}/${r}`);
}

export async function invalidate(distributionId: string, paths: string[], endpoint?: string): Promise<string> {
  const client = new CloudFrontClient({
    // CloudFront's API lives in us-east-1 whatever the distribution serves.
    region: 'us-east-1',
    requestHandler: new BoundedSdkHandler('CloudFront', { deadlineMs: 15_000, maxBodyBytes: 256 * 1024 }),
    maxAttempts: 3,
    ...(endpoint ? { endpoint } : {}),
  });
  try {
    const out = await client.send(
      new CreateInvalidationCommand({
        DistributionId: distributionId,
        InvalidationBatch: { CallerReference: randomUUID(), Paths: { Quantity: paths.length, Items: paths } },
      }),
    );
    return out.Invalidation?.Id ?? '(no id)';
  } catch (err) {
    const e = err as Error;
    throw new InvalidationError(
      `CloudFront invalidation of ${distributionId} failed: ${sanitizeCode(e.name)}: ${sanitizeMessage(e.message)}; the documents are written, and CloudFront serves them once its cache expires`,
    );
  } finally {
    client.destroy();
  }
}
