// The slice of IAM that AssumeRoleWithWebIdentity consults: OIDC providers (issuer URL + client-id list)
// and roles whose trust policy names one provider and a set of conditions on the token's claims.
// Setup mistakes throw EmulatorConfigError at once, so a test with a typo fails where the typo is
// rather than later as an unexplained AccessDenied.

import { randomBytes } from 'node:crypto';
import { isAllowedIdpUrl } from './idp-url.js';
import type { SessionTags } from './session-tags.js';
import { type TrustPolicy, type TrustRequest, parseTrustPolicy, trustPolicyAllows } from './trust-policy.js';

export type EmulatorConfigErrorCode = 'ValidationError' | 'EntityAlreadyExists' | 'InvalidHost' | 'InvalidIssuerDir';

export class EmulatorConfigError extends Error {
  override readonly name = 'EmulatorConfigError';
  constructor(
    readonly code: EmulatorConfigErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface OidcProviderSpec {
  url: string;
  clientIds: string[];
}

export type ConditionValues = Record<string, string | string[]>;
export interface TrustConditions {
  StringEquals?: ConditionValues;
  StringLike?: ConditionValues;
}

/**
 * A role's trust policy, reduced to the principals credport's flows use. Each kind of principal is a
 * separate statement in IAM terms: `conditions` apply to the OIDC provider only, `rolesAnywhereConditions`
 * to Roles Anywhere sessions only.
 */
export interface RoleTrust {
  /** Principal.Federated: the OIDC provider whose tokens may AssumeRoleWithWebIdentity. */
  providerUrl?: string;
  /** Conditions on the OIDC token (keys `<issuer host/path>:sub`, `:aud`). */
  conditions?: TrustConditions;
  /** Principal.Service rolesanywhere.amazonaws.com: IAM Roles Anywhere may create sessions. Default false. */
  rolesAnywhere?: boolean;
  /**
   * Conditions on a Roles Anywhere session: `aws:PrincipalTag/x509Subject/<attr>`,
   * `aws:PrincipalTag/x509Issuer/<attr>` (CN, O, OU, ...) and `aws:SourceArn` (the trust anchor ARN).
   */
  rolesAnywhereConditions?: TrustConditions;
  /**
   * Principal.AWS for sts:AssumeRole: role ARNs (their sessions may assume this role), account root ARNs
   * (arn:aws:iam::123456789012:root) or bare 12-digit account IDs (any principal of that account).
   */
  principalArns?: string[];
  /** Condition sts:ExternalId on AssumeRole. */
  externalId?: string;
}

export interface RoleSpec {
  arn: string;
  maxSessionDurationSeconds?: number;
  /** The trust in the emulator's own terms; or give `trustPolicy`. */
  trust?: RoleTrust;
  /**
   * The trust policy as IAM takes it (the JSON document, e.g. from a CloudFormation template with its
   * intrinsic functions resolved), evaluated statement by statement. Replaces `trust`.
   */
  trustPolicy?: unknown;
}

export interface OidcProvider {
  /** The issuer URL as registered, without a trailing slash. */
  readonly url: string;
  /** host[:port]/path: the prefix of the trust-policy condition keys and of the provider's ARN. */
  readonly hostPath: string;
  readonly clientIds: readonly string[];
}

interface Condition {
  operator: keyof TrustConditions;
  key: string;
  values: readonly string[];
}

export interface Role {
  readonly arn: string;
  readonly partition: string;
  readonly accountId: string;
  readonly name: string;
  /** AROA... unique id; STS reports it as AssumedRoleId <id>:<session>. */
  readonly roleId: string;
  readonly maxSessionDurationSeconds: number;
  /** undefined: the role trusts no OIDC provider. */
  readonly providerUrl: string | undefined;
  readonly conditions: readonly Condition[];
  readonly rolesAnywhere: boolean;
  readonly rolesAnywhereConditions: readonly Condition[];
  readonly principalArns: readonly string[];
  readonly externalId: string | undefined;
  /** Set when the role was created from a policy document; the fields above are then unused. */
  readonly trustPolicy: TrustPolicy | undefined;
}

/** Facts from a verified token that trust-policy conditions may test. */
export interface TrustContext {
  provider: OidcProvider;
  subject: string;
  audience: string;
  /** The token's https://aws.amazon.com/tags claim, read; such a request also needs sts:TagSession. */
  sessionTags?: SessionTags | undefined;
}

/** Facts from a verified Roles Anywhere request that trust-policy conditions may test. */
export interface RolesAnywhereTrustContext {
  trustAnchorArn: string;
  /** Attribute short names (CN, O, OU, C, ...) to values, from the certificate's subject and issuer. */
  subject: ReadonlyMap<string, string>;
  issuer: ReadonlyMap<string, string>;
}

/** Facts about the caller of sts:AssumeRole: the role session whose credentials signed the request. */
export interface AssumeRoleTrustContext {
  sourceRoleArn: string;
  sourceAccountId: string;
  externalId: string | undefined;
}

// IAM role paths are /-delimited printable ASCII; the role name is the last segment.
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/(?:[\x21-\x7E]*\/)?([\w+=,.@-]{1,64})$/;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function randomBase32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += BASE32[b & 31];
  return out;
}

/** Issuer URLs compare as strings, as STS does, apart from one tolerated trailing slash. */
export function normaliseIssuerUrl(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

function checkIssuerUrl(url: unknown, what: string): string {
  if (typeof url !== 'string' || url.length === 0 || url.length > 255) {
    throw new EmulatorConfigError('ValidationError', `${what} must be a URL of 1-255 characters`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EmulatorConfigError('ValidationError', `${what} is not a URL: ${url}`);
  }
  if (parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '') {
    throw new EmulatorConfigError('ValidationError', `${what} must not carry a query, fragment or credentials: ${url}`);
  }
  if (!isAllowedIdpUrl(parsed)) {
    throw new EmulatorConfigError('ValidationError', `${what} must be https, or http on a loopback address: ${url}`);
  }
  return normaliseIssuerUrl(url);
}

function conditionList(conditions: TrustConditions | undefined, keyHint = '<issuer host/path>:<claim>'): Condition[] {
  const list: Condition[] = [];
  if (conditions === undefined) return list;
  for (const [operator, block] of Object.entries(conditions)) {
    if (operator !== 'StringEquals' && operator !== 'StringLike') {
      throw new EmulatorConfigError('ValidationError', `Unsupported condition operator ${operator} (StringEquals and StringLike are)`);
    }
    if (block === undefined) continue;
    if (typeof block !== 'object' || block === null) {
      throw new EmulatorConfigError('ValidationError', `Condition block ${operator} must be an object`);
    }
    for (const [key, raw] of Object.entries(block as Record<string, unknown>)) {
      const values = typeof raw === 'string' ? [raw] : raw;
      if (!Array.isArray(values) || values.length === 0 || !values.every((v): v is string => typeof v === 'string')) {
        throw new EmulatorConfigError('ValidationError', `Condition ${operator} ${key} must be a string or a non-empty array of strings`);
      }
      if (!key.includes(':')) {
        throw new EmulatorConfigError('ValidationError', `Condition key ${key} must look like ${keyHint}`);
      }
      list.push({ operator, key, values: [...values] });
    }
  }
  return list;
}

/** IAM StringLike: `*` matches any run of characters (also none), `?` exactly one; case-sensitive. */
export function stringLike(pattern: string, value: string): boolean {
  // Compare code points so `?` matches one character even outside the BMP.
  const p = Array.from(pattern);
  const v = Array.from(value);
  let pi = 0;
  let vi = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (vi < v.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === v[vi]))) {
      pi++;
      vi++;
    } else if (pi < p.length && p[pi] === '*') {
      starAt = pi++;
      resumeAt = vi;
    } else if (starAt >= 0) {
      // Let the last star swallow one more character and retry from there.
      pi = starAt + 1;
      vi = ++resumeAt;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

export class IamRegistry {
  private readonly providers = new Map<string, OidcProvider>();
  private readonly roles = new Map<string, Role>();

  createOpenIDConnectProvider(spec: OidcProviderSpec): OidcProvider {
    const url = checkIssuerUrl(spec?.url, 'OIDC provider url');
    const clientIds: unknown = spec.clientIds;
    if (
      !Array.isArray(clientIds) ||
      clientIds.length > 100 ||
      !clientIds.every((id): id is string => typeof id === 'string' && id.length >= 1 && id.length <= 255)
    ) {
      throw new EmulatorConfigError('ValidationError', 'clientIds must be an array of at most 100 strings of 1-255 characters');
    }
    if (this.providers.has(url)) {
      throw new EmulatorConfigError('EntityAlreadyExists', `Provider with url ${url} already exists.`);
    }
    const provider: OidcProvider = {
      url,
      hostPath: url.slice(url.indexOf('://') + 3),
      clientIds: Object.freeze([...new Set(clientIds)]),
    };
    this.providers.set(url, provider);
    return provider;
  }

  createRole(spec: RoleSpec): Role {
    const match = typeof spec?.arn === 'string' ? ROLE_ARN.exec(spec.arn) : null;
    if (match === null) {
      throw new EmulatorConfigError('ValidationError', `Role ARN must look like arn:aws:iam::123456789012:role/name: ${String(spec?.arn)}`);
    }
    const maxSessionDurationSeconds = spec.maxSessionDurationSeconds ?? 3600;
    if (!Number.isInteger(maxSessionDurationSeconds) || maxSessionDurationSeconds < 3600 || maxSessionDurationSeconds > 43200) {
      throw new EmulatorConfigError('ValidationError', 'maxSessionDurationSeconds must be an integer from 3600 to 43200, as in IAM');
    }
    const trustPolicy = spec.trustPolicy === undefined ? undefined : parseTrustPolicy(spec.trustPolicy);
    if (trustPolicy !== undefined && spec.trust !== undefined) {
      throw new EmulatorConfigError('ValidationError', 'Give a role trust or trustPolicy, not both');
    }
    if (trustPolicy !== undefined) return this.addRole(spec, match, maxSessionDurationSeconds, {}, trustPolicy);
    const trust = spec.trust;
    if (typeof trust !== 'object' || trust === null) {
      throw new EmulatorConfigError('ValidationError', 'A role needs a trust policy');
    }
    const principalArns = trust.principalArns ?? [];
    if (!Array.isArray(principalArns) || !principalArns.every((p): p is string => typeof p === 'string' && AWS_PRINCIPAL.test(p))) {
      throw new EmulatorConfigError(
        'ValidationError',
        'trust.principalArns must list role ARNs, account root ARNs or 12-digit account IDs',
      );
    }
    if (trust.rolesAnywhere !== undefined && typeof trust.rolesAnywhere !== 'boolean') {
      throw new EmulatorConfigError('ValidationError', 'trust.rolesAnywhere must be a boolean');
    }
    if (trust.externalId !== undefined && (typeof trust.externalId !== 'string' || !/^[\w+=,.@:/-]{2,1224}$/.test(trust.externalId))) {
      throw new EmulatorConfigError('ValidationError', 'trust.externalId must be 2-1224 characters of [\\w+=,.@:/-]');
    }
    if (trust.providerUrl === undefined && trust.rolesAnywhere !== true && principalArns.length === 0) {
      throw new EmulatorConfigError('ValidationError', 'A trust policy must name an OIDC provider, Roles Anywhere or AWS principals');
    }
    if (trust.providerUrl === undefined && trust.conditions !== undefined) {
      throw new EmulatorConfigError('ValidationError', 'trust.conditions apply to an OIDC provider; name one in trust.providerUrl');
    }
    if (trust.rolesAnywhere !== true && trust.rolesAnywhereConditions !== undefined) {
      throw new EmulatorConfigError('ValidationError', 'trust.rolesAnywhereConditions need trust.rolesAnywhere: true');
    }
    return this.addRole(spec, match, maxSessionDurationSeconds, trust, undefined);
  }

  private addRole(
    spec: RoleSpec,
    match: RegExpExecArray,
    maxSessionDurationSeconds: number,
    trust: RoleTrust,
    trustPolicy: TrustPolicy | undefined,
  ): Role {
    const principalArns = trust.principalArns ?? [];
    if (this.roles.has(spec.arn)) {
      throw new EmulatorConfigError('EntityAlreadyExists', `Role ${spec.arn} already exists.`);
    }
    // Like IAM, the trust policy may name a provider created later; it is resolved at AssumeRole time.
    const role: Role = {
      arn: spec.arn,
      partition: match[1] ?? 'aws',
      accountId: match[2] ?? '',
      name: match[3] ?? '',
      roleId: `AROA${randomBase32(17)}`,
      maxSessionDurationSeconds,
      providerUrl: trust.providerUrl === undefined ? undefined : checkIssuerUrl(trust.providerUrl, 'trust.providerUrl'),
      conditions: Object.freeze(conditionList(trust.conditions)),
      rolesAnywhere: trust.rolesAnywhere === true,
      rolesAnywhereConditions: Object.freeze(
        conditionList(trust.rolesAnywhereConditions, 'aws:PrincipalTag/x509Subject/CN or aws:SourceArn'),
      ),
      principalArns: Object.freeze([...principalArns]),
      externalId: trust.externalId,
      trustPolicy,
    };
    this.roles.set(role.arn, role);
    return role;
  }

  findProvider(issuer: string): OidcProvider | undefined {
    return this.providers.get(normaliseIssuerUrl(issuer));
  }

  getRole(arn: string): Role | undefined {
    return this.roles.get(arn);
  }

  /**
   * Whether the role's trust policy admits this verified token: the policy's federated principal must be
   * the token's provider, and every condition must hold. As in IAM, condition keys are matched
   * case-insensitively, a key absent from the request makes its condition false, several values for one
   * key are alternatives, and separate keys and operators must all hold.
   */
  trusts(role: Role, context: TrustContext): boolean {
    if (role.trustPolicy !== undefined) return trustPolicyAllows(role.trustPolicy, webIdentityRequest(role, context));
    // The emulator's own trust terms allow AssumeRoleWithWebIdentity only, so never sts:TagSession.
    if (context.sessionTags !== undefined) return false;
    if (role.providerUrl === undefined || role.providerUrl !== context.provider.url) return false;
    const prefix = context.provider.hostPath.toLowerCase();
    const requestKeys = new Map<string, string>([
      [`${prefix}:sub`, context.subject],
      [`${prefix}:aud`, context.audience],
    ]);
    return conditionsHold(role.conditions, requestKeys);
  }

  /**
   * Whether IAM Roles Anywhere may create a session for this role: the trust policy must name the
   * service, and its Roles Anywhere conditions must hold on the certificate's attributes. Roles Anywhere
   * exposes the subject and issuer as principal tags, so those are the keys a policy can test.
   */
  trustsRolesAnywhere(role: Role, context: RolesAnywhereTrustContext): boolean {
    const requestKeys = new Map<string, string>([['aws:sourcearn', context.trustAnchorArn]]);
    for (const [attr, value] of context.subject) requestKeys.set(`aws:principaltag/x509subject/${attr.toLowerCase()}`, value);
    for (const [attr, value] of context.issuer) requestKeys.set(`aws:principaltag/x509issuer/${attr.toLowerCase()}`, value);
    if (role.trustPolicy !== undefined) {
      // Roles Anywhere assumes the role, tags the session with the certificate and sets its source identity.
      return trustPolicyAllows(role.trustPolicy, {
        principal: { service: 'rolesanywhere.amazonaws.com' },
        actions: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
        keys: new Map([...requestKeys].map(([k, v]) => [k, [v]])),
      });
    }
    if (!role.rolesAnywhere) return false;
    return conditionsHold(role.rolesAnywhereConditions, requestKeys);
  }

  /**
   * Whether a role session may sts:AssumeRole this role: its role ARN or its account must be a trusted
   * AWS principal, and the ExternalId must match when the policy requires one.
   */
  trustsAssumeRole(role: Role, context: AssumeRoleTrustContext): boolean {
    const accountRoot = `arn:aws:iam::${context.sourceAccountId}:root`;
    const principalOk = role.principalArns.some((p) => p === context.sourceRoleArn || p === accountRoot || p === context.sourceAccountId);
    if (!principalOk) return false;
    return role.externalId === undefined || role.externalId === context.externalId;
  }
}

const AWS_PRINCIPAL = /^(?:\d{12}|arn:(?:aws|aws-cn|aws-us-gov):iam::\d{12}:(?:root|role\/\S+))$/;

/** Every condition must hold; for one key, any of its values may match. Keys compare case-insensitively. */
function conditionsHold(conditions: readonly Condition[], requestKeys: ReadonlyMap<string, string>): boolean {
  return conditions.every((condition) => {
    const actual = requestKeys.get(condition.key.toLowerCase());
    if (actual === undefined) return false;
    return condition.values.some((expected) =>
      condition.operator === 'StringEquals' ? expected === actual : stringLike(expected, actual),
    );
  });
}

/**
 * What AssumeRoleWithWebIdentity asks of a policy: the provider's ARN in the role's account as the
 * federated principal; the token's `sub` and `aud` under the provider's host and path; with session
 * tags, also sts:TagSession, `aws:RequestTag/KEY` for each tag and `aws:TagKeys` (all keys).
 */
function webIdentityRequest(role: Role, context: TrustContext): TrustRequest {
  const prefix = context.provider.hostPath;
  const keys = new Map<string, string[]>([
    [`${prefix}:sub`, [context.subject]],
    [`${prefix}:aud`, [context.audience]],
  ]);
  const actions = ['sts:AssumeRoleWithWebIdentity'];
  if (context.sessionTags !== undefined) {
    actions.push('sts:TagSession');
    for (const [key, value] of context.sessionTags.tags) keys.set(`aws:RequestTag/${key}`, [value]);
    keys.set('aws:TagKeys', [...context.sessionTags.tags.keys()]);
    if (context.sessionTags.transitiveKeys.length > 0) keys.set('sts:TransitiveTagKeys', [...context.sessionTags.transitiveKeys]);
  }
  return {
    principal: { federated: `arn:${role.partition}:iam::${role.accountId}:oidc-provider/${prefix}` },
    actions,
    keys,
  };
}
