// The slice of Google IAM that Workload Identity Federation consults: pool providers (an OIDC issuer,
// where its keys come from, which audiences and subjects it accepts) and service-account bindings of
// roles/iam.workloadIdentityUser to pool principals. Setup mistakes throw EmulatorConfigError at once,
// so a test with a typo fails where the typo is, not later as an unexplained refusal.

import { createLocalJWKSet } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { EmulatorConfigError } from '../iam.js';
import { isAllowedIdpUrl } from '../idp-url.js';
import {
  POOL_OR_PROVIDER_ID,
  PROJECT_NUMBER,
  parsePoolMember,
  poolPath,
  principalOf,
  principalSetOf,
  providerResourceName,
} from './resource-names.js';
import type { PoolMember } from './resource-names.js';

export interface WorkloadIdentityPoolProviderSpec {
  /** The project number (digits), not the project ID: resource names use the number. */
  projectNumber: string | number;
  poolId: string;
  providerId: string;
  /** oidc.issuerUri: must equal the token's iss exactly. */
  issuerUri: string;
  /**
   * oidc.jwksJson: the issuer's public JWKS uploaded to the provider (a JSON string, as Google takes it,
   * or the parsed object). When set, the issuer is never contacted; when absent, the keys are found by
   * OIDC discovery from issuerUri on every exchange.
   */
  jwksJson?: string | JSONWebKeySet;
  /** oidc.allowedAudiences; default: the provider's full resource name, with or without an https: prefix. */
  allowedAudiences?: string[];
  /**
   * Real Google takes a CEL expression over the mapped attributes. The emulator models the one credport
   * documents, `assertion.sub in [...]`: the exchange is refused for any other subject.
   */
  attributeCondition?: { allowedSubjects: string[] };
}

export interface WorkloadIdentityPoolProvider {
  /** The full resource name, //iam.googleapis.com/projects/N/...: the STS audience and the default JWT aud. */
  readonly resourceName: string;
  readonly projectNumber: string;
  readonly poolId: string;
  readonly providerId: string;
  /** projects/N/locations/global/workloadIdentityPools/P */
  readonly pool: string;
  readonly issuerUri: string;
  /** The uploaded key set, or undefined when keys come from discovery. */
  readonly jwks: JSONWebKeySet | undefined;
  /** The JWT audiences accepted, defaults already applied. */
  readonly allowedAudiences: readonly string[];
  /** undefined: no attribute condition. */
  readonly allowedSubjects: readonly string[] | undefined;
  /** principalSet://iam.googleapis.com/<pool>/*: bind it to admit every identity of the pool. */
  readonly principalSet: string;
  /** principal://iam.googleapis.com/<pool>/subject/<subject>: one federated identity. */
  principal(subject: string): string;
}

/** Google caps allowedAudiences at 10 entries. */
const MAX_AUDIENCES = 10;
/** Service account emails as IAM spells them; the domain is not restricted to iam.gserviceaccount.com. */
const SERVICE_ACCOUNT_EMAIL = /^[a-z0-9][a-z0-9._-]{0,99}@[a-z0-9][a-z0-9.-]{0,252}$/;

const invalid = (message: string): EmulatorConfigError => new EmulatorConfigError('ValidationError', message);

function stringList(value: unknown, what: string, max: number): string[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.length > max ||
    !value.every((v): v is string => typeof v === 'string' && v.length > 0 && v.length <= 1024)
  ) {
    throw invalid(`${what} must be a non-empty array of at most ${max} non-empty strings`);
  }
  return [...new Set(value)];
}

function checkIssuerUri(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) throw invalid('issuerUri must be a URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`issuerUri is not a URL: ${value}`);
  }
  if (!isAllowedIdpUrl(url) || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid(`issuerUri must be https (or http on loopback) with no query, fragment or credentials: ${value}`);
  }
  // Kept as given: Google compares iss with issuerUri as strings, so a trailing slash matters.
  return value;
}

function checkJwks(value: unknown): JSONWebKeySet {
  let doc: unknown = value;
  if (typeof value === 'string') {
    try {
      doc = JSON.parse(value);
    } catch {
      throw invalid('jwksJson is not valid JSON');
    }
  }
  try {
    createLocalJWKSet(doc as JSONWebKeySet);
  } catch {
    throw invalid('jwksJson must be a JSON Web Key Set: {"keys": [...]}');
  }
  const keys = (doc as JSONWebKeySet).keys;
  // Google refuses private key material in an uploaded JWKS; so does the emulator.
  if (keys.some((key) => typeof key === 'object' && key !== null && ('d' in key || 'k' in key))) {
    throw invalid('jwksJson must hold public keys only');
  }
  return JSON.parse(JSON.stringify(doc)) as JSONWebKeySet;
}

function checkEmail(email: unknown): string {
  if (typeof email !== 'string' || !SERVICE_ACCOUNT_EMAIL.test(email)) {
    throw invalid(`A service account is named by its email, e.g. deployer@my-project.iam.gserviceaccount.com: ${String(email)}`);
  }
  return email;
}

export class WorkloadIdentityRegistry {
  private readonly providers = new Map<string, WorkloadIdentityPoolProvider>();
  /** Service account email to its roles/iam.workloadIdentityUser members. */
  private readonly bindings = new Map<string, PoolMember[]>();

  createProvider(spec: WorkloadIdentityPoolProviderSpec): WorkloadIdentityPoolProvider {
    if (typeof spec !== 'object' || spec === null) throw invalid('A provider needs a spec');
    const projectNumber = String(spec.projectNumber);
    if (!PROJECT_NUMBER.test(projectNumber)) throw invalid(`projectNumber must be a project number (digits), not ${projectNumber}`);
    for (const [what, id] of [
      ['poolId', spec.poolId],
      ['providerId', spec.providerId],
    ] as const) {
      if (typeof id !== 'string' || !POOL_OR_PROVIDER_ID.test(id)) {
        throw invalid(`${what} must be 4-32 lowercase letters, digits or hyphens, not starting with gcp-: ${String(id)}`);
      }
    }
    const issuerUri = checkIssuerUri(spec.issuerUri);
    const jwks = spec.jwksJson === undefined ? undefined : checkJwks(spec.jwksJson);
    const resourceName = providerResourceName(projectNumber, spec.poolId, spec.providerId);
    const allowedAudiences =
      spec.allowedAudiences === undefined
        ? [resourceName, `https:${resourceName}`]
        : stringList(spec.allowedAudiences, 'allowedAudiences', MAX_AUDIENCES);
    let allowedSubjects: string[] | undefined;
    if (spec.attributeCondition !== undefined) {
      allowedSubjects = stringList(spec.attributeCondition?.allowedSubjects, 'attributeCondition.allowedSubjects', 1000);
    }
    if (this.providers.has(resourceName)) throw new EmulatorConfigError('EntityAlreadyExists', `Provider ${resourceName} already exists.`);
    const pool = poolPath(projectNumber, spec.poolId);
    const provider: WorkloadIdentityPoolProvider = Object.freeze({
      resourceName,
      projectNumber,
      poolId: spec.poolId,
      providerId: spec.providerId,
      pool,
      issuerUri,
      jwks,
      allowedAudiences: Object.freeze(allowedAudiences),
      allowedSubjects: allowedSubjects === undefined ? undefined : Object.freeze(allowedSubjects),
      principalSet: principalSetOf(pool),
      principal: (subject: string) => principalOf(pool, subject),
    });
    this.providers.set(resourceName, provider);
    return provider;
  }

  findProvider(resourceName: string): WorkloadIdentityPoolProvider | undefined {
    return this.providers.get(resourceName);
  }

  /**
   * Grants roles/iam.workloadIdentityUser on the service account to a pool principal or principalSet.
   * As in IAM, the pool need not exist yet: the binding names it and is matched at call time.
   */
  bindServiceAccount(email: string, member: string): void {
    const account = checkEmail(email);
    const parsed = typeof member === 'string' ? parsePoolMember(member) : undefined;
    if (parsed === undefined) {
      throw invalid(
        `member must be principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/SUB or principalSet://.../workloadIdentityPools/P/*: ${String(member)}`,
      );
    }
    if ('unsupported' in parsed) {
      throw invalid(`The emulator models only subject principals and whole-pool principalSets, not ${parsed.unsupported}`);
    }
    const list = this.bindings.get(account) ?? [];
    list.push(parsed);
    this.bindings.set(account, list);
  }

  /** Whether a federated identity (its pool and google.subject) may impersonate the service account. */
  mayImpersonate(email: string, identity: { pool: string; subject: string }): boolean {
    const members = this.bindings.get(email) ?? [];
    return members.some((m) => m.pool === identity.pool && (m.kind === 'principalSet' || m.subject === identity.subject));
  }
}
