// Google Security Token Service, POST /v1/token: the RFC 8693 token exchange credport uses. The body is
// form-encoded (or JSON, which Google also accepts, with snake_case or camelCase keys); no Authorization
// is needed because the subject token is the proof. Parameters are checked first, in the order a
// client would fix them, then the audience must name a known provider, then the JWT is verified
// against that provider. Success is an opaque federated access token recorded with its principal.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../read-body.js';
import type { GoogleContext } from './context.js';
import { MAX_BODY_BYTES, mediaType } from './http.js';
import { OAuthError, sendJson, sendOAuthError } from './errors.js';
import { looksLikeProviderAudience } from './resource-names.js';
import { verifySubjectToken } from './subject-token.js';

export const STS_TOKEN_PATH = '/v1/token';

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];
/** Federated tokens live an hour, whatever the subject token's remaining life. */
const FEDERATED_TOKEN_SECONDS = 3600;

const PARAMETERS = ['grant_type', 'audience', 'scope', 'requested_token_type', 'subject_token', 'subject_token_type', 'options'] as const;
type Parameter = (typeof PARAMETERS)[number];
type Parameters = Partial<Record<Parameter, string>>;

const invalidRequest = (message: string): OAuthError => new OAuthError(400, 'invalid_request', message);
const camel = (name: string): string => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function fromForm(text: string): Parameters {
  const form = new URLSearchParams(text);
  const params: Parameters = {};
  for (const name of PARAMETERS) {
    const value = form.get(name);
    if (value !== null) params[name] = value;
  }
  return params;
}

function fromJson(text: string): Parameters {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalidRequest('The request body is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalidRequest('The request body must be a JSON object');
  const record = doc as Record<string, unknown>;
  const params: Parameters = {};
  for (const name of PARAMETERS) {
    const value = record[name] ?? record[camel(name)];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw invalidRequest(`The value of "${name}" must be a string`);
    params[name] = value;
  }
  return params;
}

function checkOptions(options: string | undefined): void {
  if (options === undefined) return;
  let doc: unknown;
  try {
    doc = JSON.parse(options);
  } catch {
    throw invalidRequest('The value of "options" must be a serialized JSON object');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw invalidRequest('The value of "options" must be a serialized JSON object');
}

async function exchange(params: Parameters, ctx: GoogleContext): Promise<Record<string, unknown>> {
  if (params.grant_type !== TOKEN_EXCHANGE_GRANT) {
    throw new OAuthError(400, 'unsupported_grant_type', `The value of "grant_type" must be ${TOKEN_EXCHANGE_GRANT}`);
  }
  if (params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw invalidRequest(`The value of "requested_token_type" must be ${ACCESS_TOKEN_TYPE}`);
  }
  if (params.subject_token_type === undefined || !SUBJECT_TOKEN_TYPES.includes(params.subject_token_type)) {
    throw invalidRequest(`The value of "subject_token_type" must be one of ${SUBJECT_TOKEN_TYPES.join(', ')} for an OIDC provider`);
  }
  if (params.subject_token === undefined || params.subject_token === '') throw invalidRequest('The "subject_token" parameter is required');
  const audience = params.audience;
  if (audience === undefined || audience === '')
    throw invalidRequest('The "audience" parameter is required: the full resource name of the provider');
  if (!looksLikeProviderAudience(audience)) {
    throw invalidRequest(
      'The value of "audience" must be a provider\'s full resource name, //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X',
    );
  }
  const scopes = (params.scope ?? '').split(/\s+/).filter((s) => s !== '');
  if (scopes.length === 0) throw invalidRequest('The "scope" parameter is required');
  checkOptions(params.options);
  const provider = ctx.registry.findProvider(audience);
  if (provider === undefined) {
    throw new OAuthError(
      400,
      'invalid_target',
      'The "audience" names no workload identity pool provider (it does not exist, or is disabled or deleted)',
    );
  }

  const { subject } = await verifySubjectToken(params.subject_token, provider, ctx);
  const lifetime = ctx.tokenLifetimeSeconds() ?? FEDERATED_TOKEN_SECONDS;
  const nowSeconds = Math.floor(ctx.now() / 1000);
  const principal = provider.principal(subject);
  const accessToken = ctx.tokens.issue({
    kind: 'federated',
    principal,
    pool: provider.pool,
    subject,
    provider: provider.resourceName,
    scopes: Object.freeze(scopes),
    expiresAt: new Date((nowSeconds + lifetime) * 1000),
  });
  return { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: lifetime };
}

/** Answers one request for the STS token path; never throws. Resolves true on success. */
export async function handleGoogleStsRequest(req: IncomingMessage, res: ServerResponse, ctx: GoogleContext): Promise<boolean> {
  try {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new OAuthError(405, 'invalid_request', 'The token exchange is served on POST only');
    }
    const type = mediaType(req.headers['content-type']);
    if (type !== 'application/x-www-form-urlencoded' && type !== 'application/json') {
      throw invalidRequest('The request body must be application/x-www-form-urlencoded or application/json');
    }
    const raw = await readBody(
      req,
      MAX_BODY_BYTES,
      () => new OAuthError(413, 'invalid_request', `The request body exceeds ${MAX_BODY_BYTES} bytes`),
    );
    const text = raw.toString('utf8');
    const params = type === 'application/json' ? fromJson(text) : fromForm(text);
    sendJson(res, 200, await exchange(params, ctx));
    return true;
  } catch (err) {
    if (err instanceof OAuthError) {
      // A refused body is not read to the end; close instead of letting the client send the rest.
      if (err.status === 413) res.setHeader('connection', 'close');
      sendOAuthError(res, err);
    } else {
      sendOAuthError(res, new OAuthError(500, 'server_error', 'The emulator failed to process the request'));
    }
    return false;
  }
}
