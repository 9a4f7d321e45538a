// The names Workload Identity Federation is built from: a provider's full resource name (the STS
// audience), a pool's principal for one subject, and the pool's principalSet. They are compared as
// strings by Google, so they are built and parsed in one place.

export const IAM_RESOURCE_PREFIX = '//iam.googleapis.com/';
const PRINCIPAL_PREFIX = 'principal://iam.googleapis.com/';
const PRINCIPAL_SET_PREFIX = 'principalSet://iam.googleapis.com/';

/** Project numbers are decimal; pool and provider IDs are 4-32 lowercase letters, digits and hyphens. */
export const PROJECT_NUMBER = /^[1-9]\d{0,18}$/;
export const POOL_OR_PROVIDER_ID = /^(?!gcp-)[a-z0-9-]{4,32}$/;

const POOL_PATH = /^projects\/([1-9]\d{0,18})\/locations\/global\/workloadIdentityPools\/((?!gcp-)[a-z0-9-]{4,32})$/;
const PROVIDER_AUDIENCE =
  /^\/\/iam\.googleapis\.com\/projects\/([^/]+)\/locations\/global\/workloadIdentityPools\/([^/]+)\/providers\/([^/]+)$/;

/** projects/N/locations/global/workloadIdentityPools/P: the pool, as principals name it. */
export function poolPath(projectNumber: string, poolId: string): string {
  return `projects/${projectNumber}/locations/global/workloadIdentityPools/${poolId}`;
}

export function providerResourceName(projectNumber: string, poolId: string, providerId: string): string {
  return `${IAM_RESOURCE_PREFIX}${poolPath(projectNumber, poolId)}/providers/${providerId}`;
}

/** Whether an STS audience has the shape of a provider's full resource name (known or not). */
export function looksLikeProviderAudience(audience: string): boolean {
  return PROVIDER_AUDIENCE.test(audience);
}

/** The federated identity of one mapped google.subject. */
export function principalOf(pool: string, subject: string): string {
  return `${PRINCIPAL_PREFIX}${pool}/subject/${subject}`;
}

/** Every identity of a pool. */
export function principalSetOf(pool: string): string {
  return `${PRINCIPAL_SET_PREFIX}${pool}/*`;
}

/** An IAM member the emulator can bind to a service account. */
export type PoolMember = { kind: 'principal'; pool: string; subject: string } | { kind: 'principalSet'; pool: string };

/**
 * Parses principal://.../subject/SUB and principalSet://.../*. Google has more member kinds (group/,
 * attribute.NAME/ sets); the emulator does not model them and says so rather than never matching.
 */
export function parsePoolMember(member: string): PoolMember | { unsupported: string } | undefined {
  if (member.startsWith(PRINCIPAL_PREFIX)) {
    const rest = member.slice(PRINCIPAL_PREFIX.length);
    const at = rest.indexOf('/subject/');
    if (at < 0) return undefined;
    const pool = rest.slice(0, at);
    const subject = rest.slice(at + '/subject/'.length);
    if (!POOL_PATH.test(pool) || subject.length === 0) return undefined;
    return { kind: 'principal', pool, subject };
  }
  if (member.startsWith(PRINCIPAL_SET_PREFIX)) {
    const rest = member.slice(PRINCIPAL_SET_PREFIX.length);
    if (rest.endsWith('/*') && POOL_PATH.test(rest.slice(0, -2))) return { kind: 'principalSet', pool: rest.slice(0, -2) };
    const pool = /^(projects\/[^/]+\/locations\/global\/workloadIdentityPools\/[^/]+)\//.exec(rest)?.[1];
    if (pool !== undefined && POOL_PATH.test(pool)) return { unsupported: rest.slice(pool.length + 1) };
    return undefined;
  }
  return undefined;
}
