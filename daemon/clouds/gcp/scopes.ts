/** The OAuth scope of a token good for every Google Cloud API; apart from schema.ts so providers need no schema. */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
