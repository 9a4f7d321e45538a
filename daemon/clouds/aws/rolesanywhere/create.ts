/**
 * Builds a Roles Anywhere profile's provider: its signing key, certificate source and renewer. A module of
 * its own because it loads the X.509 stack (@peculiar/x509, pkijs), which a daemon with only OIDC
 * profiles never needs: the runtime imports it only when a configured profile has this type.
 */
import { isKeyBackendError } from '../../../keys/errors.js';
import type { KeySigner } from '../../../keys/signer.js';
import type { Env } from '../../../config/paths.js';
import { readSecretFile } from '../../../util/secure-file.js';
import { ProviderError } from '../../../providers/types.js';
import type { ManagedProvider, ProfileBase, ProviderDeps } from '../../types.js';
import { CERTIFICATE_ON_TOKEN } from '../config-checks.js';
import type { AwsCredentials } from '../credentials.js';
import { CertificateError, CertificateSource, TokenCertificateSource, type CertificateProvider } from './certificates.js';
import { createRenewer } from './renewal/from-config.js';
import { fileInstaller, tokenInstaller } from './renewal/install.js';
import type { RenewedChain } from './renewal/check-renewed.js';
import type { CertificateRenewer } from './renewal/renewer.js';
import type { X509SigningKey } from '../../../x509/signing-key.js';
import { AwsRolesAnywhereProvider } from './provider.js';
import { fromKeyFile, fromKeySigner } from '../../../x509/signing-key.js';
import type { AwsRolesAnywhereProfileConfig } from '../schema.js';
import type { ProviderOptionsCommon } from '../runtime.js';

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

export function createRolesAnywhereProvider(
  name: string,
  profile: ProfileBase,
  deps: ProviderDeps,
  common: ProviderOptionsCommon,
): ManagedProvider {
  const p = profile as AwsRolesAnywhereProfileConfig;
  const { signer, tuning } = deps;
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
