/** The AWS half that runs: the three providers and the ECS and IMDS endpoints. */
import { defaultSubject } from '../../identity/jwt.js';
import { isKeyBackendError } from '../../keys/errors.js';
import type { KeySigner } from '../../keys/signer.js';
import type { Env } from '../../config/paths.js';
import { readSecretFile } from '../../util/secure-file.js';
import { ProviderError } from '../../providers/types.js';
import type { CloudRuntime, ManagedProvider, ProfileBase, ProviderDeps } from '../types.js';
import { AwsAssumeRoleProvider } from './assume-role/provider.js';
import { CERTIFICATE_ON_TOKEN } from './config-checks.js';
import type { AwsCredentials } from './credentials.js';
import { ecsEndpoint } from './endpoints/ecs-endpoint.js';
import { imdsEndpoint } from './endpoints/imds-endpoint.js';
import { AwsOidcProvider } from './oidc/provider.js';
import { defaultSessionName } from './oidc/session-name.js';
import { CertificateError, CertificateSource, TokenCertificateSource, type CertificateProvider } from './rolesanywhere/certificates.js';
import { createRenewer } from './rolesanywhere/renewal/from-config.js';
import { fileInstaller, tokenInstaller } from './rolesanywhere/renewal/install.js';
import type { RenewedChain } from './rolesanywhere/renewal/check-renewed.js';
import type { CertificateRenewer } from './rolesanywhere/renewal/renewer.js';
import type { X509SigningKey } from '../../x509/signing-key.js';
import { sessionTagsOf } from './oidc/session-tags.js';
import { AwsRolesAnywhereProvider } from './rolesanywhere/provider.js';
import { fromKeyFile, fromKeySigner } from '../../x509/signing-key.js';
import type { AwsProfileConfig, AwsRolesAnywhereProfileConfig } from './schema.js';

function passphrase(p: AwsRolesAnywhereProfileConfig, env: Env): string | undefined {
  if (p.private_key_passphrase_file !== undefined) {
    // One trailing newline is what an editor leaves; it is not part of the passphrase.
    return readSecretFile(p.private_key_passphrase_file, 'passphrase file', 'create it with mode 0600')
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  if (p.private_key_passphrase_env !== undefined) {
    const v = env[p.private_key_passphrase_env];
    if (v === undefined)
      throw new ProviderError(
        'InvalidConfiguration',
        `environment variable ${p.private_key_passphrase_env} (private_key_passphrase_env) is not set`,
        false,
      );
    return v;
  }
  return undefined;
}

/**
 * The certificate on the token that holds the device key, read through the signer's own session before
 * every CreateSession. Token failures keep the backend's code (CERTIFICATE_NOT_FOUND, TOKEN_NOT_PRESENT,
 * PIN_INCORRECT, ...) so that /health says what to fix.
 */
function tokenCertificate(name: string, p: AwsRolesAnywhereProfileConfig, signer: KeySigner): TokenCertificateSource {
  const readCertificates = signer.readCertificates?.bind(signer);
  if (readCertificates === undefined) {
    throw new ProviderError(
      'InvalidConfiguration',
      `profile ${name}: certificate = "${CERTIFICATE_ON_TOKEN}" reads the certificate from the PKCS#11 token holding the device key, but the device key is a ${signer.describe().backend} key`,
      false,
    );
  }
  const where = signer.describe().location;
  const read = async (): Promise<Uint8Array[]> => {
    try {
      return await readCertificates();
    } catch (err) {
      if (isKeyBackendError(err)) throw new CertificateError(`reading the certificate from the token: ${err.message}`, err.code);
      throw err;
    }
  };
  return new TokenCertificateSource(read, where, p.chain);
}

/** Where a renewed certificate goes: the token next to the key, or the certificate (and chain) files. */
function installerFor(name: string, p: AwsRolesAnywhereProfileConfig, signer: KeySigner): (renewed: RenewedChain) => Promise<void> {
  if (p.certificate !== CERTIFICATE_ON_TOKEN) return fileInstaller(p.certificate, p.chain);
  const store = signer.storeCertificate?.bind(signer);
  if (store === undefined) {
    throw new ProviderError(
      'InvalidConfiguration',
      `profile ${name}: renewal cannot write the certificate back to the token: the ${signer.describe().backend} backend (or its addon build) cannot store certificates`,
      false,
    );
  }
  return tokenInstaller(store, p.chain);
}

/** The profile's renewer, when it has [profiles.X.renewal]; the same key and certificate source as its provider. */
export function renewerFor(
  name: string,
  p: AwsRolesAnywhereProfileConfig,
  key: X509SigningKey,
  certificates: CertificateProvider,
  signer: KeySigner,
  deps: Pick<ProviderDeps, 'source' | 'background'> & { clock: NonNullable<ProviderDeps['background']>['clock'] },
): CertificateRenewer | undefined {
  if (p.renewal === undefined) return undefined;
  try {
    return createRenewer({
      profile: name,
      config: p.renewal,
      key,
      certificates,
      install: installerFor(name, p, signer),
      clock: deps.clock,
      credentials: deps.source(name) as () => Promise<AwsCredentials>,
      ...(deps.background?.logger ? { logger: deps.background.logger } : {}),
    });
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    throw new ProviderError('InvalidConfiguration', `profile ${name}: renewal: ${(err as Error).message}`, false);
  }
}

function createProvider(name: string, profile: ProfileBase, deps: ProviderDeps): ManagedProvider {
  const p = profile as AwsProfileConfig;
  const { signer, tuning, config: cfg } = deps;
  const common = {
    ...(tuning.maxAttempts !== undefined ? { maxAttempts: tuning.maxAttempts } : {}),
    ...(tuning.requestTimeoutMs !== undefined ? { requestTimeoutMs: tuning.requestTimeoutMs } : {}),
    ...(tuning.maxBodyBytes !== undefined ? { maxBodyBytes: tuning.maxBodyBytes } : {}),
  };
  switch (p.type) {
    case 'aws-oidc': {
      const oidc = cfg.oidc;
      if (!oidc) throw new ProviderError('InvalidConfiguration', `profile ${name}: aws-oidc needs an [oidc] table`, false);
      return new AwsOidcProvider({
        signer,
        issuer: oidc.issuer,
        subject: oidc.subject ?? defaultSubject(signer),
        audience: oidc.audience,
        tokenLifetimeSeconds: oidc.token_lifetime_seconds,
        roleArn: p.role_arn,
        region: p.region,
        durationSeconds: p.duration_seconds,
        roleSessionName: p.role_session_name ?? defaultSessionName(signer.thumbprint),
        ...(p.sts_endpoint ? { stsEndpoint: p.sts_endpoint } : {}),
        ...(sessionTagsOf(oidc) ? { sessionTags: sessionTagsOf(oidc) } : {}),
        ...common,
        ...(tuning.now ? { now: tuning.now } : {}),
      });
    }
    case 'aws-rolesanywhere': {
      const onToken = p.certificate === CERTIFICATE_ON_TOKEN;
      if (onToken && p.private_key !== undefined) {
        // Config validation refuses this too; here for callers that build profiles themselves.
        throw new ProviderError(
          'InvalidConfiguration',
          `profile ${name}: certificate = "${CERTIFICATE_ON_TOKEN}" belongs to the device key; it cannot be used with private_key`,
          false,
        );
      }
      const key = p.private_key !== undefined ? fromKeyFile(p.private_key, passphrase(p, deps.env)) : fromKeySigner(signer);
      const certificates: CertificateProvider = onToken ? tokenCertificate(name, p, signer) : new CertificateSource(p.certificate, p.chain);
      // Renewal runs in the daemon only: a one-shot command fetches once and exits.
      const background = deps.background;
      const renewer = background ? renewerFor(name, p, key, certificates, signer, { ...deps, clock: background.clock }) : undefined;
      const provider = new AwsRolesAnywhereProvider({
        key,
        certificate: certificates,
        ...(renewer ? { renewer } : {}),
        trustAnchorArn: p.trust_anchor_arn,
        profileArn: p.profile_arn,
        roleArn: p.role_arn,
        durationSeconds: p.duration_seconds,
        ...(p.role_session_name !== undefined ? { roleSessionName: p.role_session_name } : {}),
        ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
        ...common,
        ...(tuning.now ? { now: tuning.now } : {}),
      });
      renewer?.start();
      return provider;
    }
    case 'aws-assume-role':
      return new AwsAssumeRoleProvider({
        source: deps.source(p.source_profile) as () => Promise<AwsCredentials>,
        sourceName: p.source_profile,
        roleArn: p.role_arn,
        region: p.region,
        durationSeconds: p.duration_seconds,
        roleSessionName: p.role_session_name ?? defaultSessionName(signer.thumbprint),
        ...(p.sts_endpoint !== undefined ? { stsEndpoint: p.sts_endpoint } : {}),
        ...(p.external_id !== undefined ? { externalId: p.external_id } : {}),
        unattended: deps.sourceUnattended(p.source_profile),
        ...common,
        ...(tuning.now ? { now: tuning.now } : {}),
      });
  }
}

export const awsRuntime: CloudRuntime = { createProvider, endpoints: [ecsEndpoint, imdsEndpoint] };
