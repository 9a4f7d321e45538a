/**
 * Google Cloud: Workload Identity Federation from the device key, served to Google's own client
 * libraries as a URL-sourced external_account credential, and (opt-in) through a GCE metadata server
 * emulation. This file is the cheap half every command loads (the config loader reads it).
 */
import type { CloudSpec, ConfigView, ProfileTypeSpec } from '../spec-types.js';
import { checkUrl } from '../../util/urls.js';
import { checkGcpProfiles } from './checks.js';
import type { GcpWifProfileConfig } from './schema.js';

function check(name: string, p: GcpWifProfileConfig, view: ConfigView, problems: string[]): void {
  checkUrl(p.sts_endpoint, `profiles.${name}.sts_endpoint`, problems);
  checkUrl(p.iamcredentials_endpoint, `profiles.${name}.iamcredentials_endpoint`, problems);
  // The rule across profiles is reported once, on the profile that breaks it.
  if (p.metadata_server) {
    const served = Object.entries(view.profiles).filter(([, q]) => q.type === 'gcp-wif' && (q as GcpWifProfileConfig).metadata_server);
    if (served[served.length - 1]?.[0] === name)
      problems.push(...checkGcpProfiles(served as Array<[string, GcpWifProfileConfig]>, { oidc: true }));
  }
}

const wif: ProfileTypeSpec<GcpWifProfileConfig> = {
  type: 'gcp-wif',
  summary:
    "Google Cloud Workload Identity Federation: an ES256 JWT signed by the device key, exchanged at Google STS, optionally for a service account's token. Uses [oidc] for issuer, subject and token lifetime; its own `audience` is the JWT `aud`. See docs/setup-gcp.md.",
  usesOidc: true,
  check,
  principal: (p) => p.service_account ?? p.audience,
};

export const gcpSpec: CloudSpec = {
  name: 'gcp',
  title: 'Google Cloud',
  profileTypes: [wif],
};
