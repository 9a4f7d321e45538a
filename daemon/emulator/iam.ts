// The slice of IAM that AssumeRoleWithWebIdentity consults: OIDC providers (issuer URL + client-id list)
// and roles whose trust policy names one provider and a set of conditions on the token's claims.
// Setup mistakes throw EmulatorConfigError at once, so a test with a typo fails where the typo is
// rather than later as an unexplained AccessDenied.

import { randomBytes } from 'node:crypto';
import { isAllowedIdpUrl } from './oidc-verify.js';

export type EmulatorConfigErrorCode = 'ValidationError' | 'EntityAlreadyExists' | 'InvalidHost' | 'InvalidIssuerDir';

export class EmulatorConfigError extends Error {
  override readonly name = 'EmulatorConfigError';
  constructor(readonly code: EmulatorConfigErrorCode, message: string) {
    super(message);
  }
}

export interface OidcProviderSpec { url: string; clientIds: string[] }

export type ConditionValues = Record<string, string | string[]>;
export interface TrustConditions { StringEquals?: ConditionValues; StringLike?: ConditionValues }

export interface RoleSpec {
  arn: string;
  maxSessionDurationSeconds?: number;
  trust: { providerUrl: string; conditions?: TrustConditions };
}

export interface OidcProvider {
  /** The issuer URL as registered, without a trailing slash. */
  readonly url: string;
  /** host[:port]/path: the prefix of the trust-policy condition keys and of the provider's ARN. */
  readonly hostPath: string;
  readonly clientIds: readonly string[];
}

interface Condition { operator: keyof TrustConditions; key: string; values: readonly string[] }

export interface Role {
  readonly arn: string;
  readonly partition: string;
  readonly accountId: string;
  readonly name: string;
  /** AROA... unique id; STS reports it as AssumedRoleId <id>:<session>. */
  readonly roleId: string;
  readonly maxSessionDurationSeconds: number;
  readonly providerUrl: string;
  readonly conditions: readonly Condition[];
}

/** Facts from a verified token that trust-policy conditions may test. */
export interface TrustContext { provider: OidcProvider; subject: string; audience: string }

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

function conditionList(conditions: TrustConditions | undefined): Condition[] {
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
        throw new EmulatorConfigError('ValidationError', `Condition key ${key} must look like <issuer host/path>:<claim>`);
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
    if (!Array.isArray(clientIds) || clientIds.length > 100
      || !clientIds.every((id): id is string => typeof id === 'string' && id.length >= 1 && id.length <= 255)) {
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
    if (typeof spec.trust !== 'object' || spec.trust === null) {
      throw new EmulatorConfigError('ValidationError', 'A role needs a trust policy');
    }
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
      providerUrl: checkIssuerUrl(spec.trust.providerUrl, 'trust.providerUrl'),
      conditions: Object.freeze(conditionList(spec.trust.conditions)),
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
    if (role.providerUrl !== context.provider.url) return false;
    const prefix = context.provider.hostPath.toLowerCase();
    const requestKeys = new Map<string, string>([
      [`${prefix}:sub`, context.subject],
      [`${prefix}:aud`, context.audience],
    ]);
    return role.conditions.every((condition) => {
      const actual = requestKeys.get(condition.key.toLowerCase());
      if (actual === undefined) return false;
      return condition.values.some((expected) =>
        condition.operator === 'StringEquals' ? expected === actual : stringLike(expected, actual));
    });
  }
}
