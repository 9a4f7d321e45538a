/** What `oidc publish`, `oidc revoke` and `key rotate` share: where the issuer is kept, and their errors. */
import type { ResolvedConfig } from '../config/load.js';
import type { OidcConfig } from '../config/schema.js';
import { S3LocationError } from '../issuer/s3-location.js';
import { describeTarget, parseTarget, type ChangeOptions, type ChangeResult, type IssuerTarget } from '../issuer/targets.js';
import { CliError, EXIT } from './cli-error.js';

export const ISSUER_FLAGS = {
  region: { type: 'string' },
  'endpoint-url': { type: 'string' },
  'distribution-id': { type: 'string' },
} as const;

export const ISSUER_FLAGS_HELP = `  --region REGION         the bucket's region (default: AWS_REGION, else us-east-1;
                          a bucket elsewhere is found by S3's redirect)
  --endpoint-url URL      another S3 endpoint (MinIO, a test server); path-style
  --distribution-id ID    CloudFront distribution to invalidate
                          (default: [oidc] publish_distribution_id)`;

export function requireOidc(cfg: ResolvedConfig): OidcConfig {
  if (!cfg.oidc) throw new CliError(`${cfg.file}: no [oidc] table with an issuer`, EXIT.config);
  return cfg.oidc;
}

/** The named place, else the config's bucket; s3://... is a bucket, anything else a directory. */
export function targetOf(positional: string | undefined, oidc: OidcConfig, command: string): IssuerTarget {
  const text = positional ?? oidc.publish_bucket;
  if (!text)
    throw new CliError(
      'no place to publish to',
      EXIT.usage,
      `name one (s3://BUCKET[/PREFIX] or a directory), or set [oidc] publish_bucket; see 'credport ${command} --help'`,
    );
  try {
    return parseTarget(text);
  } catch (err) {
    if (err instanceof S3LocationError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

export function changeOptions(values: Record<string, unknown>, oidc: OidcConfig): ChangeOptions {
  const endpoint = values['endpoint-url'] as string | undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint))
    throw new CliError(`--endpoint-url: expected an http(s):// URL`, EXIT.usage);
  const distributionId = (values['distribution-id'] as string | undefined) ?? oidc.publish_distribution_id;
  if (distributionId !== undefined && !/^[A-Z0-9]{1,32}$/.test(distributionId))
    throw new CliError(`--distribution-id: expected a CloudFront distribution id such as E2QWRUHAPOMQZL`, EXIT.usage);
  const region = values.region as string | undefined;
  if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(region))
    throw new CliError(`--region: ${region.slice(0, 40)} is not a region name`, EXIT.usage);
  return {
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(distributionId ? { distributionId } : {}),
  };
}

/** The one-line errors of a change, with the exit code their kind deserves. */
export function issuerCliError(err: unknown): never {
  const e = err as Error;
  switch (e.name) {
    // A malformed document is a file problem the user fixes, like a bad config.
    case 'IssuerExportError':
      throw new CliError(e.message, EXIT.config);
    case 'JwksFullError':
    case 'ConflictError':
    case 'DirLockError':
    case 'S3IssuerError':
      throw new CliError(e.message, EXIT.failure);
    default:
      throw err;
  }
}

export function describeChange(r: ChangeResult, what: string): string {
  const lines = [`${r.changed ? what : 'unchanged'}: ${r.where} (${r.keyCount} key${r.keyCount === 1 ? '' : 's'})`];
  if (r.invalidation) lines.push(`CloudFront invalidation ${r.invalidation} created`);
  return `${lines.join('\n')}\n`;
}

export { describeTarget };
