/**
 * The `https://aws.amazon.com/tags` claim: STS turns it into session tags on AssumeRoleWithWebIdentity,
 * which a trust policy can test (`aws:RequestTag/KEY`, `aws:TagKeys`) and permissions can use
 * (`aws:PrincipalTag/KEY`). STS wants each tag value as a one-element array.
 */

export const AWS_TAGS_CLAIM = 'https://aws.amazon.com/tags';

export interface SessionTags {
  principalTags: Readonly<Record<string, string>>;
  transitiveTagKeys?: readonly string[];
}

export function sessionTagsClaim(tags: SessionTags): Record<string, unknown> {
  const principal_tags = Object.fromEntries(Object.entries(tags.principalTags).map(([k, v]) => [k, [v]]));
  return {
    [AWS_TAGS_CLAIM]: {
      principal_tags,
      ...(tags.transitiveTagKeys && tags.transitiveTagKeys.length > 0 ? { transitive_tag_keys: [...tags.transitiveTagKeys] } : {}),
    },
  };
}

/** The tags `[oidc]` asks for, or undefined when it asks for none. */
export function sessionTagsOf(oidc: { principal_tags?: Record<string, string>; transitive_tag_keys?: string[] }): SessionTags | undefined {
  if (oidc.principal_tags === undefined || Object.keys(oidc.principal_tags).length === 0) return undefined;
  return {
    principalTags: oidc.principal_tags,
    ...(oidc.transitive_tag_keys ? { transitiveTagKeys: oidc.transitive_tag_keys } : {}),
  };
}
