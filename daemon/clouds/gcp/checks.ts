/**
 * Rules about gcp-wif profiles that no one profile's schema can state: they need the [oidc] identity,
 * and at most one may be served through the metadata server (its protocol names no profile).
 */

interface ProfileLike {
  type: string;
  metadata_server?: boolean;
}

/** One-line problems, empty when the profiles are fine. */
export function checkGcpProfiles(profiles: Iterable<readonly [string, ProfileLike]>, has: { oidc: boolean }): string[] {
  const problems: string[] = [];
  const gcp = [...profiles].filter(([, p]) => p.type === 'gcp-wif');
  if (gcp.length > 0 && !has.oidc) {
    problems.push(`profiles ${gcp.map(([n]) => n).join(', ')}: gcp-wif needs an [oidc] table (the issuer Google's provider trusts)`);
  }
  const served = gcp.filter(([, p]) => p.metadata_server === true).map(([n]) => n);
  if (served.length > 1)
    problems.push(`profiles ${served.join(', ')} all set metadata_server = true; at most one profile can be the metadata server's`);
  return problems;
}
