/**
 * Where an STS call goes: the configured `sts_endpoint` when there is one, else the regional endpoint
 * the AWS SDK resolves for the region (https://sts.REGION.DNS-SUFFIX), the suffix by the region's
 * partition. The global endpoint is never chosen: regional endpoints keep a region's outage local.
 */
import { ProviderError } from '../../../providers/types.js';

/** Partitions whose DNS suffix is not amazonaws.com, by region pattern (as the SDK's partition table has them). */
const SUFFIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^cn-\w+-\d+$/, 'amazonaws.com.cn'],
  [/^us-iso-\w+-\d+$/, 'c2s.ic.gov'],
  [/^us-isob-\w+-\d+$/, 'sc2s.sgov.gov'],
  [/^us-isof-\w+-\d+$/, 'csp.hci.ic.gov'],
  [/^eu-isoe-\w+-\d+$/, 'cloud.adc-e.uk'],
  [/^eusc-de-\w+-\d+$/, 'amazonaws.eu'],
];

/** The DNS suffix of a region's partition: aws and aws-us-gov use amazonaws.com. */
export function dnsSuffix(region: string): string {
  for (const [re, suffix] of SUFFIXES) if (re.test(region)) return suffix;
  return 'amazonaws.com';
}

/** The regional STS endpoint for `region`, as the SDK picks it. */
export function regionalStsEndpoint(region: string): string {
  if (!/^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/.test(region)) throw new Error(`"${region.slice(0, 40)}" is not an AWS region`);
  return `https://sts.${region}.${dnsSuffix(region)}`;
}

/** The URL an STS call is sent to; throws for an override that is not an http(s) URL. */
const invalid = (message: string): ProviderError => new ProviderError('InvalidConfiguration', message, false);

/** Throws ProviderError InvalidConfiguration for an sts_endpoint that is not a plain http(s) URL. */
export function stsEndpoint(region: string, override?: string): URL {
  if (override === undefined) return new URL(regionalStsEndpoint(region));
  let url: URL;
  try {
    url = new URL(override);
  } catch {
    throw invalid(`sts_endpoint "${override.slice(0, 200)}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`sts_endpoint must be an http(s) URL, not ${url.protocol}`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid('sts_endpoint must not carry a query, a fragment or credentials');
  }
  return url;
}
