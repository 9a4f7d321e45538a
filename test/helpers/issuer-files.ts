/** A static OIDC issuer as files: the discovery document and the JWKS an emulator fetches. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JWK } from 'jose';

export async function publish(dir: string, iss: string, keys: JWK[]): Promise<void> {
  await mkdir(join(dir, '.well-known'), { recursive: true });
  await writeFile(
    join(dir, '.well-known', 'openid-configuration'),
    JSON.stringify({
      issuer: iss,
      jwks_uri: `${iss}/.well-known/jwks.json`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256', 'RS256'],
    }),
  );
  await writeFile(join(dir, '.well-known', 'jwks.json'), JSON.stringify({ keys }));
}
