// An Entra ID (Microsoft identity platform) token endpoint for tests and `credport demo`, served over
// https with a throwaway CA (MSAL refuses http authorities): the tenant's OpenID configuration MSAL
// reads, instance discovery, and POST /TENANT/oauth2/v2.0/token for client_credentials with a client
// assertion, verified as Entra verifies a federated identity credential (assertion-verify.ts). Access
// tokens are opaque; a test asks verifyAccessToken what one is.

import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readBody } from '../read-body.js';
import { verifyClientAssertion } from './assertion-verify.js';
import { EntraError, sendEntraError, sendJson } from './errors.js';
import { type Application, type ApplicationSpec, EntraDirectory } from './registry.js';
import { makeTestTls } from './test-ca.js';

export type { ApplicationSpec, FederatedCredentialSpec } from './registry.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_BODY_BYTES = 64 * 1024;
const DEFAULT_TOKEN_SECONDS = 3599;
const TENANT = /^\/([A-Za-z0-9.-]{1,128})(\/.*)$/;

export interface EntraTokenRecord {
  tenantId: string;
  clientId: string;
  scope: string;
  /** The federated credential that matched. */
  assertionIssuer: string;
  assertionSubject: string;
  expiresAt: Date;
}

export interface EntraEmulatorOptions {
  now?: () => number;
  clockSkewSeconds?: number;
  /** Lifetime of issued access tokens (default 3599 s, Entra's usual). */
  tokenLifetimeSeconds?: number;
  /**
   * Also answer plain http on loopback (httpUrl), for a daemon running inside a process that cannot
   * trust the test CA any more (`credport demo`: NODE_EXTRA_CA_CERTS is read at process start only).
   */
  plainHttp?: boolean;
}

export interface EntraEmulator {
  /** https://127.0.0.1:PORT: the authority host. */
  readonly url: string;
  /** http://127.0.0.1:PORT, with plainHttp: the same service without TLS. */
  readonly httpUrl?: string;
  /** PEM of the CA the server certificate chains to (NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE). */
  readonly caPem: string;
  addApplication(spec: ApplicationSpec): Application;
  /** What an access token this emulator issued is, or undefined. */
  verifyAccessToken(token: string): (EntraTokenRecord & { expired: boolean }) | undefined;
  /** Token requests, successful or not, and the errors' AADSTS codes in order. */
  readonly stats: { calls: number; issued: number; refusals: number[] };
  close(): Promise<void>;
}

function form(text: string): URLSearchParams {
  return new URLSearchParams(text);
}

export async function startEntraEmulator(o: EntraEmulatorOptions = {}): Promise<EntraEmulator> {
  const now = o.now ?? Date.now;
  const tls = await makeTestTls(now());
  const directory = new EntraDirectory();
  const tokens = new Map<string, EntraTokenRecord>();
  const stats = { calls: 0, issued: 0, refusals: [] as number[] };
  let base = '';

  function openidConfiguration(tenant: string) {
    return {
      token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${base}/${tenant}/v2.0`,
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/devicecode`,
      end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
    };
  }

  async function token(req: IncomingMessage, res: ServerResponse, tenant: string): Promise<void> {
    stats.calls++;
    const at = now();
    try {
      if (req.method !== 'POST') throw new EntraError(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
      const body = form(
        (await readBody(req, MAX_BODY_BYTES, () => new EntraError(413, 'invalid_request', 90002, 'Request too large.'))).toString('utf8'),
      );
      if (body.get('grant_type') !== 'client_credentials')
        throw new EntraError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
      const clientId = body.get('client_id') ?? '';
      const scope = body.get('scope') ?? '';
      if (!/^\S+\/\.default$/.test(scope))
        throw new EntraError(
          400,
          'invalid_scope',
          1002012,
          `The provided value for scope ${scope.slice(0, 128)} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
        );
      if (body.get('client_assertion_type') !== JWT_BEARER || !body.get('client_assertion'))
        throw new EntraError(
          401,
          'invalid_client',
          7000218,
          "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
      const app = directory.find(tenant, clientId);
      if (!app)
        throw new EntraError(
          400,
          'unauthorized_client',
          700016,
          `Application with identifier '${clientId.slice(0, 64)}' was not found in the directory '${tenant}'.`,
        );
      const verified = await verifyClientAssertion(body.get('client_assertion') ?? '', app, {
        now: at,
        clockSkewSeconds: o.clockSkewSeconds ?? 300,
      });
      const lifetime = o.tokenLifetimeSeconds ?? DEFAULT_TOKEN_SECONDS;
      const accessToken = `ey${randomBytes(48).toString('base64url')}`;
      tokens.set(accessToken, {
        tenantId: app.tenantId,
        clientId: app.clientId,
        scope,
        assertionIssuer: verified.issuer,
        assertionSubject: verified.subject,
        expiresAt: new Date(at + lifetime * 1000),
      });
      stats.issued++;
      sendJson(res, 200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken });
    } catch (err) {
      const e = err instanceof EntraError ? err : new EntraError(500, 'temporarily_unavailable', 90033, 'A transient error has occurred.');
      stats.refusals.push(e.aadsts);
      sendEntraError(res, e, at, base);
    }
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    if (url.pathname === '/common/discovery/instance') {
      const host = new URL(base).host;
      sendJson(res, 200, {
        tenant_discovery_endpoint: `${base}/common/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      });
      return;
    }
    const m = TENANT.exec(url.pathname);
    const tenant = m?.[1] ?? '';
    const rest = m?.[2] ?? '';
    if (rest === '/v2.0/.well-known/openid-configuration') {
      sendJson(res, 200, openidConfiguration(tenant));
      return;
    }
    if (rest === '/oauth2/v2.0/token') {
      void token(req, res, tenant);
      return;
    }
    sendEntraError(res, new EntraError(404, 'invalid_request', 90000, 'Not found.'), now(), base);
  };
  const server = createServer({ key: tls.keyPem, cert: tls.certPem }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const plain = o.plainHttp ? createHttpServer(handler) : undefined;
  if (plain) await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const httpUrl = plain ? `http://127.0.0.1:${(plain.address() as AddressInfo).port}` : undefined;

  return {
    url: base,
    ...(httpUrl ? { httpUrl } : {}),
    caPem: tls.caPem,
    addApplication: (spec) => directory.add(spec),
    verifyAccessToken(t) {
      const r = tokens.get(t);
      return r ? { ...r, expired: r.expiresAt.getTime() <= now() } : undefined;
    },
    get stats() {
      return { calls: stats.calls, issued: stats.issued, refusals: [...stats.refusals] };
    },
    close: async () => {
      for (const srv of [server, plain]) {
        if (!srv) continue;
        srv.closeAllConnections();
        await new Promise<void>((resolve) => srv.close(() => resolve()));
      }
    },
  };
}
