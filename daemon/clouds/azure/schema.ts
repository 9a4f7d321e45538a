/**
 * The `azure-federated` profile: Microsoft Entra ID access tokens for an app registration or a
 * user-assigned managed identity that trusts a federated identity credential. In the style of
 * config/schema.ts: a description on every field, an `expect` where a pattern says little.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { allowExecutablesField, defaultField, PROFILE_NAME_PATTERN } from '../profile-fields.js';

export const GUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
/** A tenant: its id, or one of its domain names (contoso.onmicrosoft.com). */
export const TENANT_PATTERN = `(?:${GUID_PATTERN.slice(1, -1)}|^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$)`;
/** Entra's federated credentials name this audience; an override is for clouds that name another. */
export const DEFAULT_ASSERTION_AUDIENCE = 'api://AzureADTokenExchange';
export const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com';
export const MANAGEMENT_SCOPE = 'https://management.azure.com/.default';

export const AzureFederatedProfile = Type.Object(
  {
    type: Type.Literal('azure-federated', {
      description:
        'Microsoft Entra ID access tokens from a federated identity credential: a JWT signed by credport (RS256) as the client assertion of a client_credentials request.',
      expect: '"azure-federated"',
    }),
    tenant_id: Type.String({
      pattern: `^${TENANT_PATTERN}$`,
      description: 'The Entra tenant: its id (a GUID) or a verified domain name.',
      expect: 'a tenant id (GUID) or a domain like contoso.onmicrosoft.com',
    }),
    client_id: Type.String({
      pattern: GUID_PATTERN,
      description:
        'Application (client) id of the app registration, or client id of the user-assigned managed identity, holding the federated credential.',
      expect: 'a client id (GUID)',
    }),
    assertion: Type.String({
      default: 'device',
      pattern: PROFILE_NAME_PATTERN,
      description:
        'What signs the client assertion. "device": credport itself, with the [rsa_key] (Entra accepts RS256 only; the P-256 device key cannot sign it); iss and sub are those of [oidc]. Or the name of a gcp-wif profile with a service_account: the Google-signed ID token of that service account (IAM Credentials generateIdToken), for devices with no RSA key; the federated credential then names https://accounts.google.com and the service account\'s unique id.',
      expect: '"device" or the name of a gcp-wif profile',
    }),
    scopes: Type.Array(Type.String({ pattern: '^[\\x21-\\x7e]{1,256}/\\.default$', expect: 'a resource scope ending in /.default' }), {
      default: [MANAGEMENT_SCOPE],
      minItems: 1,
      maxItems: 16,
      uniqueItems: true,
      description:
        'Resources to hold tokens for, one token each (Entra issues one resource per token), each kept fresh. The managed identity endpoint serves exactly these resources.',
      expect: 'a list of scopes like ["https://management.azure.com/.default"]',
    }),
    audience: Type.String({
      default: DEFAULT_ASSERTION_AUDIENCE,
      minLength: 1,
      maxLength: 256,
      description: 'The client assertion\'s `aud` (with assertion = "device"), as the federated credential names it.',
    }),
    authority: Type.String({
      default: DEFAULT_AUTHORITY,
      pattern: '^https?://',
      description:
        'Entra authority host (sovereign clouds: https://login.microsoftonline.us, https://login.chinacloudapi.cn; or a local emulator). Tokens come from AUTHORITY/TENANT/oauth2/v2.0/token. Plain http only to a loopback host.',
      expect: 'an https URL',
    }),
    federated_token_file: Type.Boolean({
      default: false,
      description:
        'Also keep a client assertion (1 hour, rewritten at every refresh) in a 0600 file beside the daemon token, for SDKs that want AZURE_FEDERATED_TOKEN_FILE (WorkloadIdentityCredential). Anyone who can read it can get tokens as this identity until it expires.',
    }),
    allow_executables: allowExecutablesField(),
    default: defaultField('The Azure profile the unnamed managed identity endpoint serves (`IDENTITY_ENDPOINT` from `credport env`).'),
  },
  { additionalProperties: false },
);

export type AzureFederatedProfileConfig = Static<typeof AzureFederatedProfile>;

/** Each profile type's schema, for clouds/schemas.ts. */
export const AZURE_PROFILE_SCHEMAS: Readonly<Record<string, TSchema>> = { 'azure-federated': AzureFederatedProfile };
