/** `s3://BUCKET[/PREFIX]`: where an issuer's documents live in S3, as the issuer URL's path lives in CloudFront. */

export interface S3Location {
  bucket: string;
  /** Without leading or trailing slash; '' for the bucket's root. */
  prefix: string;
}

export class S3LocationError extends Error {
  override readonly name = 'S3LocationError';
}

// S3's own rules for new buckets: 3-63 lower-case letters, digits, dots and hyphens, starting and
// ending with a letter or digit.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseS3Location(text: string): S3Location {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(text);
  if (!m) throw new S3LocationError(`${JSON.stringify(text.slice(0, 80))} is not an s3://BUCKET[/PREFIX] location`);
  const bucket = m[1] ?? '';
  if (!BUCKET.test(bucket))
    throw new S3LocationError(`s3 location ${text.slice(0, 80)}: ${JSON.stringify(bucket)} is not a valid bucket name`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((seg) => seg === '..' || seg === '.') || /[\u0000-\u001f\u007f]/.test(prefix) || prefix.includes('//')) {
    throw new S3LocationError(`s3 location ${text.slice(0, 80)}: the prefix is not a plain path`);
  }
  return { bucket, prefix };
}

/** The object key of a path below the issuer. */
export function objectKey(loc: S3Location, relative: string): string {
  return loc.prefix ? `${loc.prefix}/${relative}` : relative;
}

export function formatS3Location(loc: S3Location): string {
  return `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
}
