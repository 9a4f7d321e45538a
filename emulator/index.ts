// credport's local clouds: one loopback HTTP server that answers the STS Query API on POST /, IAM Roles
// Anywhere CreateSession on POST /sessions, Google STS under /gcp/sts and IAM Credentials under
// /gcp/iamcredentials (see gcp/), and serves an OIDC issuer directory under /oidc/. It verifies what
// AWS and Google verify, so a daemon that passes against it has at least sent what the services
// would accept. Tests drive it through the hooks on Emulator: setup (providers, roles, trust anchors,
// profiles), an injectable clock, fault injection and a record of every credential it minted.

import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { GoogleContext } from './gcp/context.js';
import { writeGoogleFault } from './gcp/faults.js';
import { WorkloadIdentityRegistry } from './gcp/registry.js';
import type { WorkloadIdentityPoolProvider, WorkloadIdentityPoolProviderSpec } from './gcp/registry.js';
import { GCP_IAM_CREDENTIALS_PREFIX, GCP_STS_PREFIX, describeToken, googleServiceOf, handleGoogleRequest } from './gcp/service.js';
import type { GoogleService, GoogleTokenInfo } from './gcp/service.js';
import { GoogleTokenStore } from './gcp/token-store.js';
import { GCP_ACCOUNTS_PREFIX, GoogleIdTokenIssuer, serviceAccountUniqueId } from './gcp/id-tokens.js';
import { EmulatorConfigError, IamRegistry } from './iam.js';
import type { OidcProviderSpec, RoleSpec } from './iam.js';
import { ISSUER_PREFIX, createIssuerHost, resolveIssuerDir } from './issuer-host.js';
import { SESSIONS_PATH, handleRolesAnywhereRequest, writeRolesAnywhereFault } from './rolesanywhere.js';
import type { RolesAnywhereContext } from './rolesanywhere.js';
import { RolesAnywhereRegistry } from './rolesanywhere-registry.js';
import { CrlRegistry, type ImportCrlSpec, type ImportedCrl } from './rolesanywhere-crl.js';
import {
  ACM_PCA_TARGET_PREFIX,
  createPrivateCa,
  handleAcmPcaRequest,
  type AcmPcaContext,
  type PrivateCa,
  type PrivateCaSpec,
} from './acm-pca.js';
import type { RolesAnywhereProfileSpec, TrustAnchorSpec } from './rolesanywhere-registry.js';
import { handleStsRequest, writeFault } from './sts.js';
import type { EmulatorFault, IssuedCredentials, StsContext } from './sts.js';

export { EmulatorConfigError } from './iam.js';
export type { EmulatorConfigErrorCode, OidcProviderSpec, RoleSpec, RoleTrust, TrustConditions } from './iam.js';
export type { RolesAnywhereProfileSpec, TrustAnchorSpec } from './rolesanywhere-registry.js';
export type { ImportCrlSpec, ImportedCrl } from './rolesanywhere-crl.js';
export type { PrivateCaSpec } from './acm-pca.js';
export type { EmulatorFault, IssuedCredentials } from './sts.js';
export type { WorkloadIdentityPoolProvider, WorkloadIdentityPoolProviderSpec } from './gcp/registry.js';
export type { GoogleTokenInfo } from './gcp/service.js';
export type { FederatedTokenRecord, ServiceAccountTokenRecord } from './gcp/token-store.js';

/** Which service a fault applies to; default all. gcp-sts is Google STS, iamcredentials Google IAM Credentials. */
export type EmulatorService = 'sts' | 'rolesanywhere' | 'acm-pca' | GoogleService;
const SERVICES: readonly EmulatorService[] = ['sts', 'rolesanywhere', 'acm-pca', 'gcp-sts', 'iamcredentials'];

export interface EmulatorOptions {
  /** Loopback address to bind: an IPv4 127.0.0.0/8 address or ::1. Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port, so parallel tests never collide. */
  port?: number;
  /** Directory served read-only under /oidc/ (the issuer documents). */
  issuerDir?: string;
  /** Clock in ms for token checks, the Date header and credential expirations. Default Date.now. */
  now?: () => number;
  /**
   * Tolerance in seconds for exp, nbf and iat. Default 60: device and emulator clocks drift apart, and
   * a token minted "now" on a machine a few seconds ahead must not be refused as issued in the future;
   * a minute is the order of tolerance OIDC verifiers, STS included, apply in practice.
   */
  clockSkewSeconds?: number;
  /** The region STS answers as; AssumeRole signatures scoped to another are refused. Default us-east-1. */
  stsRegion?: string;
}

export interface EmulatorStats {
  /** STS Query API calls (AssumeRoleWithWebIdentity and AssumeRole). */
  stsCalls: number;
  stsSuccesses: number;
  stsFailures: number;
  /** Roles Anywhere CreateSession calls. */
  rolesAnywhereCalls: number;
  rolesAnywhereSuccesses: number;
  rolesAnywhereFailures: number;
  /** Google STS token exchanges (POST /gcp/sts/v1/token and anything else under /gcp/sts). */
  gcpStsCalls: number;
  gcpStsSuccesses: number;
  gcpStsFailures: number;
  /** Google IAM Credentials calls (generateAccessToken and anything else under /gcp/iamcredentials). */
  iamCredentialsCalls: number;
  iamCredentialsSuccesses: number;
  iamCredentialsFailures: number;
  /** ACM Private CA calls (IssueCertificate, GetCertificate: any X-Amz-Target ACMPrivateCA.*). */
  acmPcaCalls: number;
  acmPcaSuccesses: number;
  acmPcaFailures: number;
}

export interface Emulator {
  readonly url: string;
  readonly stsEndpoint: string;
  readonly issuerBaseUrl: string;
  /** The endpoint override for Roles Anywhere (the provider appends /sessions). */
  readonly rolesAnywhereEndpoint: string;
  /** Google STS base URL: a client's token_url is `${gcpStsEndpoint}/v1/token`. */
  readonly gcpStsEndpoint: string;
  /** IAM Credentials base URL: `${iamCredentialsEndpoint}/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`. */
  readonly iamCredentialsEndpoint: string;
  /** The emulated https://accounts.google.com: iss of generateIdToken's ID tokens, with discovery and JWKS. */
  readonly googleIdTokenIssuer: string;
  /** A service account's numeric unique id: the `sub` of its Google ID tokens. */
  serviceAccountUniqueId(email: string): string;
  createOpenIDConnectProvider(spec: OidcProviderSpec): void;
  createRole(spec: RoleSpec): void;
  /** A Roles Anywhere trust anchor: its ARN (whose region requests must be scoped to) and CA certificate(s). */
  createTrustAnchor(spec: TrustAnchorSpec): void;
  /** A Roles Anywhere profile: the roles it allows and its longest session (default 3600). */
  createRolesAnywhereProfile(spec: RolesAnywhereProfileSpec): void;
  /** ImportCrl: a CRL for a trust anchor, signed by one of its CA certificates; consulted once enabled. */
  importCrl(spec: ImportCrlSpec): Promise<ImportedCrl>;
  /** EnableCrl / DisableCrl. */
  setCrlEnabled(crlId: string, enabled: boolean): void;
  /** An ACM Private CA (its certificate and key) and the roles whose sessions may issue from it. */
  createPrivateCertificateAuthority(spec: PrivateCaSpec): void;
  /** A Google workload identity pool provider (OIDC); its resourceName is the STS audience. */
  createWorkloadIdentityPoolProvider(spec: WorkloadIdentityPoolProviderSpec): WorkloadIdentityPoolProvider;
  /**
   * Grants roles/iam.workloadIdentityUser on a service account to `principal://.../subject/SUB` or
   * `principalSet://.../workloadIdentityPools/P/*`.
   */
  bindServiceAccount(email: string, member: string): void;
  /**
   * A Google access token issued by this emulator (STS federated token or generateAccessToken token):
   * to whom, which scopes, until when, and whether it has expired by the emulator's clock. undefined
   * for any token it did not issue.
   */
  verifyGoogleAccessToken(token: string): GoogleTokenInfo | undefined;
  /**
   * times: apply to the next N calls only; default: until cleared with null. service: only calls to one
   * service (AWS STS, Roles Anywhere, Google STS or IAM Credentials); default: whichever comes next.
   * Google services render an 'error' fault in their own shape: code is the OAuth error (gcp-sts) or
   * the google.rpc status name (iamcredentials); type is ignored.
   */
  setFault(fault: EmulatorFault | null, opts?: { times?: number; service?: EmulatorService }): void;
  /**
   * Issue credentials (AWS STS, Roles Anywhere, and Google STS and IAM Credentials tokens alike) that
   * live this many seconds whatever the request asked for; null restores normal behaviour. Zero or
   * negative values mint credentials that are already expired.
   */
  setCredentialLifetime(seconds: number | null): void;
  /** A snapshot of the counters. */
  readonly stats: EmulatorStats;
  /** Credentials minted by any call (AssumeRoleWithWebIdentity, AssumeRole, CreateSession), by access key ID. */
  issued(accessKeyId: string): IssuedCredentials | undefined;
  /** Every credential minted, oldest first (CreateSession's carry the certificate serial). */
  issuedInOrder(): IssuedCredentials[];
  close(): Promise<void>;
}

const DEFAULT_CLOCK_SKEW_SECONDS = 60;

function checkHost(host: string): string {
  // Only literal loopback addresses: a name such as localhost may resolve to something else, or to
  // IPv4 on one machine and IPv6 on another.
  if ((isIPv4(host) && host.startsWith('127.')) || host === '::1') return host;
  throw new EmulatorConfigError('InvalidHost', `The emulator binds loopback only (127.0.0.0/8 or ::1), not ${host}`);
}

function checkFault(fault: EmulatorFault): EmulatorFault {
  const invalid = (why: string): EmulatorConfigError => new EmulatorConfigError('ValidationError', `Invalid fault: ${why}`);
  switch (fault.kind) {
    case 'unavailable':
    case 'malformed':
    case 'truncated':
      return { kind: fault.kind };
    case 'error':
      if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) throw invalid('status must be 400-599');
      if (typeof fault.code !== 'string' || fault.code === '') throw invalid('code must be a non-empty string');
      if (typeof fault.message !== 'string') throw invalid('message must be a string');
      if (fault.type !== undefined && fault.type !== 'Sender' && fault.type !== 'Receiver')
        throw invalid('type must be Sender or Receiver');
      return { ...fault };
    case 'delay':
      if (!Number.isFinite(fault.ms) || fault.ms < 0) throw invalid('ms must be a non-negative number');
      return { ...fault };
    default:
      throw invalid(`unknown kind ${String((fault as { kind: unknown }).kind)}`);
  }
}

/** Pending fault state: which fault, which service, and how many more calls it applies to (null: until cleared). */
interface ActiveFault {
  fault: EmulatorFault;
  remaining: number | null;
  service: EmulatorService | undefined;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = checkHost(options.host ?? '127.0.0.1');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new EmulatorConfigError('ValidationError', `port must be an integer from 0 to 65535, not ${port}`);
  }
  const clockSkewSeconds = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (!Number.isFinite(clockSkewSeconds) || clockSkewSeconds < 0) {
    throw new EmulatorConfigError('ValidationError', 'clockSkewSeconds must be a non-negative number');
  }
  const now = options.now ?? Date.now;
  const issuerRoot = options.issuerDir === undefined ? undefined : await resolveIssuerDir(options.issuerDir);
  const issuerHost = createIssuerHost(issuerRoot);

  const iam = new IamRegistry();
  const rolesAnywhere = new RolesAnywhereRegistry();
  const minted = new Map<string, IssuedCredentials>();
  const counters: EmulatorStats = {
    stsCalls: 0,
    stsSuccesses: 0,
    stsFailures: 0,
    rolesAnywhereCalls: 0,
    rolesAnywhereSuccesses: 0,
    rolesAnywhereFailures: 0,
    gcpStsCalls: 0,
    gcpStsSuccesses: 0,
    gcpStsFailures: 0,
    iamCredentialsCalls: 0,
    iamCredentialsSuccesses: 0,
    iamCredentialsFailures: 0,
    acmPcaCalls: 0,
    acmPcaSuccesses: 0,
    acmPcaFailures: 0,
  };
  const crls = new CrlRegistry();
  const authorities = new Map<string, PrivateCa>();
  let activeFault: ActiveFault | null = null;
  let lifetimeOverride: number | null = null;
  let closing: Promise<void> | undefined;
  const pendingDelays = new Set<() => void>();

  const stsContext: StsContext = {
    iam,
    now,
    clockSkewSeconds,
    region: options.stsRegion ?? 'us-east-1',
    credentialLifetimeSeconds: () => lifetimeOverride,
    record: (credentials) => {
      minted.set(credentials.accessKeyId, credentials);
    },
    lookup: (accessKeyId) => minted.get(accessKeyId),
  };
  const rolesAnywhereContext: RolesAnywhereContext = {
    iam,
    registry: rolesAnywhere,
    crls,
    now,
    credentialLifetimeSeconds: () => lifetimeOverride,
    record: (credentials) => {
      minted.set(credentials.accessKeyId, credentials);
    },
  };

  const workloadIdentity = new WorkloadIdentityRegistry();
  let baseUrl = '';
  const idTokens = new GoogleIdTokenIssuer(() => baseUrl);
  const googleContext: GoogleContext = {
    idTokens,
    registry: workloadIdentity,
    tokens: new GoogleTokenStore(now),
    now,
    clockSkewSeconds,
    tokenLifetimeSeconds: () => lifetimeOverride,
  };

  function takeFault(service: EmulatorService): EmulatorFault | null {
    if (activeFault === null || (activeFault.service !== undefined && activeFault.service !== service)) return null;
    const { fault } = activeFault;
    if (activeFault.remaining !== null && --activeFault.remaining <= 0) activeFault = null;
    return fault;
  }

  /** Waits ms, or less if the emulator closes meanwhile; resolves true when it is still open. */
  function pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        pendingDelays.delete(finish);
        resolve(closing === undefined);
      };
      const timer = setTimeout(finish, ms);
      pendingDelays.add(finish);
    });
  }

  async function serveSts(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.stsCalls++;
    const fault = takeFault('sts');
    if (fault !== null && fault.kind !== 'delay') {
      counters.stsFailures++;
      writeFault(req, res, fault);
      return;
    }
    if (fault !== null && !(await pause(fault.ms))) {
      counters.stsFailures++;
      req.socket.destroy();
      return;
    }
    const outcome = await handleStsRequest(req, res, stsContext);
    if (outcome.ok) counters.stsSuccesses++;
    else counters.stsFailures++;
  }

  async function serveRolesAnywhere(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.rolesAnywhereCalls++;
    const fault = takeFault('rolesanywhere');
    if (fault !== null && fault.kind !== 'delay') {
      counters.rolesAnywhereFailures++;
      writeRolesAnywhereFault(req, res, fault);
      return;
    }
    if (fault !== null && !(await pause(fault.ms))) {
      counters.rolesAnywhereFailures++;
      req.socket.destroy();
      return;
    }
    const outcome = await handleRolesAnywhereRequest(req, res, rolesAnywhereContext);
    if (outcome.ok) counters.rolesAnywhereSuccesses++;
    else counters.rolesAnywhereFailures++;
  }

  const acmPcaContext: AcmPcaContext = { now, lookup: (id) => minted.get(id), authorities };

  async function serveAcmPca(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.acmPcaCalls++;
    const fault = takeFault('acm-pca');
    if (fault !== null && fault.kind !== 'delay') {
      counters.acmPcaFailures++;
      writeRolesAnywhereFault(req, res, fault);
      return;
    }
    if (fault !== null && !(await pause(fault.ms))) {
      counters.acmPcaFailures++;
      req.socket.destroy();
      return;
    }
    if ((await handleAcmPcaRequest(req, res, acmPcaContext)).ok) counters.acmPcaSuccesses++;
    else counters.acmPcaFailures++;
  }

  async function serveGoogle(req: IncomingMessage, res: ServerResponse, service: GoogleService, path: string): Promise<void> {
    const [calls, successes, failures] =
      service === 'gcp-sts'
        ? (['gcpStsCalls', 'gcpStsSuccesses', 'gcpStsFailures'] as const)
        : (['iamCredentialsCalls', 'iamCredentialsSuccesses', 'iamCredentialsFailures'] as const);
    counters[calls]++;
    const fault = takeFault(service);
    if (fault !== null && fault.kind !== 'delay') {
      counters[failures]++;
      writeGoogleFault(req, res, service, fault);
      return;
    }
    if (fault !== null && !(await pause(fault.ms))) {
      counters[failures]++;
      req.socket.destroy();
      return;
    }
    if (await handleGoogleRequest(req, res, path, googleContext)) counters[successes]++;
    else counters[failures]++;
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Clients derive clock skew from Date; it follows the injected clock like everything else.
    res.sendDate = false;
    res.setHeader('date', new Date(now()).toUTCString());
    const rawUrl = req.url ?? '';
    const path = rawUrl.startsWith('/') ? (rawUrl.split('?', 1)[0] ?? '') : '';
    // JSON 1.1 services share POST / with STS's query API; the target header tells them apart.
    const target = req.headers['x-amz-target'];
    if (path === '/' && typeof target === 'string' && target.startsWith(ACM_PCA_TARGET_PREFIX)) return serveAcmPca(req, res);
    if (path === '/') return serveSts(req, res);
    if (path === SESSIONS_PATH) return serveRolesAnywhere(req, res);
    const google = googleServiceOf(path);
    if (google !== undefined) return serveGoogle(req, res, google, path);
    if (path === ISSUER_PREFIX || path.startsWith(`${ISSUER_PREFIX}/`)) return issuerHost.handle(req, res, path);
    if (path.startsWith(`${GCP_ACCOUNTS_PREFIX}/`)) return idTokens.handle(res, path);
    const status = path === '' ? 400 : 404;
    const text = status === 400 ? 'Bad Request\n' : 'Not Found\n';
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch(() => {
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('Internal Server Error\n');
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  baseUrl = url;

  return {
    url,
    stsEndpoint: url,
    issuerBaseUrl: `${url}${ISSUER_PREFIX}`,
    rolesAnywhereEndpoint: url,
    gcpStsEndpoint: `${url}${GCP_STS_PREFIX}`,
    iamCredentialsEndpoint: `${url}${GCP_IAM_CREDENTIALS_PREFIX}`,
    googleIdTokenIssuer: idTokens.issuer,
    serviceAccountUniqueId,
    createOpenIDConnectProvider(spec) {
      iam.createOpenIDConnectProvider(spec);
    },
    createRole(spec) {
      iam.createRole(spec);
    },
    createTrustAnchor(spec) {
      rolesAnywhere.createTrustAnchor(spec);
    },
    createRolesAnywhereProfile(spec) {
      rolesAnywhere.createProfile(spec);
    },
    importCrl(spec) {
      return crls.importCrl(spec, rolesAnywhere.getTrustAnchor(spec.trustAnchorArn));
    },
    setCrlEnabled(crlId, enabled) {
      crls.setEnabled(crlId, enabled);
    },
    createPrivateCertificateAuthority(spec) {
      const ca = createPrivateCa(spec);
      if (authorities.has(ca.arn)) throw new EmulatorConfigError('EntityAlreadyExists', `Private CA ${ca.arn} already exists.`);
      authorities.set(ca.arn, ca);
    },
    createWorkloadIdentityPoolProvider(spec) {
      return workloadIdentity.createProvider(spec);
    },
    bindServiceAccount(email, member) {
      workloadIdentity.bindServiceAccount(email, member);
    },
    verifyGoogleAccessToken(token) {
      return describeToken(googleContext, token);
    },
    setFault(fault, opts) {
      if (fault === null) {
        activeFault = null;
        return;
      }
      const times = opts?.times;
      if (times !== undefined && (!Number.isInteger(times) || times < 1)) {
        throw new EmulatorConfigError('ValidationError', 'times must be a positive integer');
      }
      const service = opts?.service;
      if (service !== undefined && !SERVICES.includes(service)) {
        throw new EmulatorConfigError('ValidationError', `service must be one of ${SERVICES.join(', ')}`);
      }
      activeFault = { fault: checkFault(fault), remaining: times ?? null, service };
    },
    setCredentialLifetime(seconds) {
      if (seconds !== null && !Number.isInteger(seconds)) {
        throw new EmulatorConfigError('ValidationError', 'The credential lifetime must be a whole number of seconds, or null');
      }
      lifetimeOverride = seconds;
    },
    get stats() {
      return Object.freeze({ ...counters });
    },
    issuedInOrder() {
      return [...minted.values()].map((c) => ({ ...c, expiration: new Date(c.expiration) }));
    },
    issued(accessKeyId) {
      const found = minted.get(accessKeyId);
      return found === undefined ? undefined : { ...found, expiration: new Date(found.expiration) };
    },
    close() {
      if (closing === undefined) {
        closing = new Promise<void>((resolve) => {
          server.close(() => resolve());
        });
        for (const finish of [...pendingDelays]) finish();
        server.closeAllConnections();
      }
      return closing;
    },
  };
}
