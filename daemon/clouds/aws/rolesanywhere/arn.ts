/**
 * The ARNs a Roles Anywhere profile names. The trust anchor's region decides the endpoint and the
 * signing scope; a profile in another region cannot be used with it (aws_signing_helper refuses the
 * same combination before calling).
 */

export interface RolesAnywhereArn {
  partition: string;
  region: string;
  accountId: string;
  resourceType: 'trust-anchor' | 'profile';
  id: string;
}

const RA_ARN =
  /^arn:(aws|aws-cn|aws-us-gov):rolesanywhere:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):(trust-anchor|profile)\/([0-9a-zA-Z-]{1,64})$/;
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::\d{12}:role\/(?:[\x21-\x7E]*\/)?[\w+=,.@-]{1,64}$/;

export function parseRolesAnywhereArn(arn: string, expected: 'trust-anchor' | 'profile'): RolesAnywhereArn | undefined {
  const m = RA_ARN.exec(arn);
  if (m === null || m[4] !== expected) return undefined;
  return { partition: m[1] ?? 'aws', region: m[2] ?? '', accountId: m[3] ?? '', resourceType: expected, id: m[5] ?? '' };
}

export function isRoleArn(arn: string): boolean {
  return ROLE_ARN.test(arn);
}

/** The public endpoint for a region; China regions live under amazonaws.com.cn. */
export function defaultEndpoint(partition: string, region: string): string {
  return `https://rolesanywhere.${region}.amazonaws.com${partition === 'aws-cn' ? '.cn' : ''}`;
}
