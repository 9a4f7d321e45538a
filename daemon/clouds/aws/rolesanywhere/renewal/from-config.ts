/** The renewer of one aws-rolesanywhere profile, from its `[profiles.X.renewal]` table. */
import { join } from 'node:path';
import type { Clock } from '../../../../refresh/clock.js';
import { CA_CERT_FILE } from '../../../../x509/ca.js';
import type { X509SigningKey } from '../../../../x509/signing-key.js';
import type { AwsCredentials } from '../../credentials.js';
import type { RolesAnywhereRenewalConfig } from '../../schema.js';
import type { CertificateProvider } from '../certificates.js';
import { readTrustAnchor, type RenewedChain } from './check-renewed.js';
import { commandIssuer } from './issue-command.js';
import { credportCaIssuer } from './issue-credport-ca.js';
import { privateCaIssuer } from './issue-private-ca.js';
import type { CertificateIssuer } from './issuer.js';
import { RenewalError } from './renewal-error.js';
import { CertificateRenewer, type RenewerOptions } from './renewer.js';
import { parseValidity } from './schedule.js';

export interface RenewerDeps {
  profile: string;
  config: RolesAnywhereRenewalConfig;
  key: X509SigningKey;
  certificates: CertificateProvider;
  install: (renewed: RenewedChain) => Promise<void>;
  clock: Clock;
  /** The profile's own current credentials (aws-private-ca signs with them). */
  credentials: () => Promise<AwsCredentials>;
  logger?: RenewerOptions['logger'];
  random?: () => number;
}

const DEFAULT_COMMAND_TIMEOUT_S = 60;

export function issuerFor(r: RolesAnywhereRenewalConfig, credentials: () => Promise<AwsCredentials>): CertificateIssuer {
  switch (r.method) {
    case 'credport-ca':
      if (r.ca_dir === undefined) throw new RenewalError('RenewalMisconfigured', 'renewal.ca_dir is required with method = "credport-ca"');
      return credportCaIssuer(r.ca_dir);
    case 'command':
      if (r.command === undefined) throw new RenewalError('RenewalMisconfigured', 'renewal.command is required with method = "command"');
      return commandIssuer({ argv: r.command, timeoutMs: (r.timeout_seconds ?? DEFAULT_COMMAND_TIMEOUT_S) * 1000 });
    case 'aws-private-ca':
      if (r.certificate_authority_arn === undefined)
        throw new RenewalError('RenewalMisconfigured', 'renewal.certificate_authority_arn is required with method = "aws-private-ca"');
      return privateCaIssuer({
        certificateAuthorityArn: r.certificate_authority_arn,
        signingAlgorithm: r.signing_algorithm ?? 'SHA256WITHECDSA',
        credentials,
        ...(r.private_ca_endpoint !== undefined ? { endpoint: r.private_ca_endpoint } : {}),
      });
  }
}

/** The trust anchor file: configured, else the built-in CA's own certificate. */
export function trustAnchorPath(r: RolesAnywhereRenewalConfig): string {
  if (r.trust_anchor_certificate !== undefined) return r.trust_anchor_certificate;
  if (r.ca_dir !== undefined) return join(r.ca_dir, CA_CERT_FILE);
  throw new RenewalError('RenewalMisconfigured', `renewal.trust_anchor_certificate is required with method = "${r.method}"`);
}

export function createRenewer(d: RenewerDeps): CertificateRenewer {
  const r = d.config;
  const anchorPath = trustAnchorPath(r);
  const validityMs = r.validity !== undefined ? parseValidity(r.validity) : undefined;
  return new CertificateRenewer({
    profile: d.profile,
    issuer: issuerFor(r, d.credentials),
    ...(r.at !== undefined ? { at: r.at } : {}),
    ...(validityMs !== undefined ? { validityMs } : {}),
    clock: d.clock,
    current: async () => d.certificates.current(),
    key: d.key,
    anchors: () => readTrustAnchor(anchorPath),
    install: d.install,
    ...(d.logger ? { logger: d.logger } : {}),
    ...(d.random ? { random: d.random } : {}),
  });
}
