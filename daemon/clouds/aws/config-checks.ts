/** What the AWS profile schemas cannot check, and the paths they name. */
import type { ConfigView } from '../spec-types.js';
import { checkUrl } from '../../util/urls.js';
import type { AwsAssumeRoleProfileConfig, AwsOidcProfileConfig, AwsRolesAnywhereProfileConfig } from './schema.js';

/**
 * `certificate = "token"`: the certificate stored on the PKCS#11 token next to the device key, not a file.
 * A file of that name is written "./token".
 */
export const CERTIFICATE_ON_TOKEN = 'token';

const arnRegion = (arn: string): string | undefined => arn.split(':')[3];

export function checkOidcProfile(name: string, p: AwsOidcProfileConfig, _view: ConfigView, problems: string[]): void {
  if (p.sts_endpoint !== undefined) checkUrl(p.sts_endpoint, `profiles.${name}.sts_endpoint`, problems);
}

export function checkRolesAnywhereProfile(name: string, p: AwsRolesAnywhereProfileConfig, view: ConfigView, problems: string[]): void {
  const key = `profiles.${name}`;
  if (p.endpoint !== undefined) checkUrl(p.endpoint, `${key}.endpoint`, problems);
  if (arnRegion(p.trust_anchor_arn) !== arnRegion(p.profile_arn)) {
    problems.push(
      `${key}.profile_arn: its region (${arnRegion(p.profile_arn)}) differs from the trust anchor's (${arnRegion(p.trust_anchor_arn)}); Roles Anywhere needs both in one region`,
    );
  }
  if (p.private_key_passphrase_file !== undefined && p.private_key_passphrase_env !== undefined) {
    problems.push(`${key}: give at most one of private_key_passphrase_file and private_key_passphrase_env`);
  }
  if ((p.private_key_passphrase_file !== undefined || p.private_key_passphrase_env !== undefined) && p.private_key === undefined) {
    problems.push(`${key}: a passphrase is set but private_key is not (the device key has no passphrase)`);
  }
  checkRenewal(key, p, problems);
  if (p.certificate === CERTIFICATE_ON_TOKEN) {
    // The certificate on the token belongs to the key next to it, which only the pkcs11 backend holds.
    if (view.keyBackend !== 'pkcs11') {
      problems.push(
        `${key}.certificate: "${CERTIFICATE_ON_TOKEN}" reads the certificate stored next to the device key on its PKCS#11 token, so it needs [key] backend = "pkcs11" (this config's key backend is "${view.keyBackend}"); give a certificate file instead`,
      );
    }
    if (p.private_key !== undefined) {
      problems.push(
        `${key}.certificate: "${CERTIFICATE_ON_TOKEN}" is the certificate of the [key] backend's key and cannot be used with private_key; remove private_key, or give the key file's certificate as a file`,
      );
    }
  }
}

/** What `[profiles.X.renewal]` needs for its method, which the schema (one table for three methods) cannot say. */
function checkRenewal(key: string, p: AwsRolesAnywhereProfileConfig, problems: string[]): void {
  const r = p.renewal;
  if (r === undefined) return;
  const k = `${key}.renewal`;
  const needs = (field: keyof typeof r, why: string) => {
    if (r[field] === undefined) problems.push(`${k}.${field} is required with method = "${r.method}" (${why})`);
  };
  const unused = (fields: Array<keyof typeof r>) => {
    for (const f of fields) if (r[f] !== undefined) problems.push(`${k}.${f} does not apply to method = "${r.method}"; remove it`);
  };
  switch (r.method) {
    case 'aws-private-ca':
      needs('certificate_authority_arn', 'the CA that issues the certificate');
      needs('trust_anchor_certificate', 'the CA certificate a renewed certificate must chain to');
      unused(['command', 'timeout_seconds', 'ca_dir']);
      if (r.private_ca_endpoint !== undefined) checkUrl(r.private_ca_endpoint, `${k}.private_ca_endpoint`, problems);
      break;
    case 'command':
      needs('command', 'the program that signs the CSR');
      needs('trust_anchor_certificate', 'the CA certificate a renewed certificate must chain to');
      unused(['certificate_authority_arn', 'signing_algorithm', 'private_ca_endpoint', 'ca_dir', 'validity']);
      break;
    case 'credport-ca':
      needs('ca_dir', "the directory 'credport ca init' made");
      unused(['certificate_authority_arn', 'signing_algorithm', 'private_ca_endpoint', 'command', 'timeout_seconds']);
      break;
  }
}

export function checkAssumeRoleProfile(name: string, p: AwsAssumeRoleProfileConfig, _view: ConfigView, problems: string[]): void {
  if (p.sts_endpoint !== undefined) checkUrl(p.sts_endpoint, `profiles.${name}.sts_endpoint`, problems);
}

/** The files a Roles Anywhere profile names, made absolute; "token" is a source, not a path. */
export function resolveRolesAnywherePaths(
  p: AwsRolesAnywhereProfileConfig,
  expand: (path: string) => string,
): AwsRolesAnywhereProfileConfig {
  const x = (v: string | undefined) => (v === undefined ? undefined : expand(v));
  return {
    ...p,
    certificate: p.certificate === CERTIFICATE_ON_TOKEN ? p.certificate : expand(p.certificate),
    ...(p.chain !== undefined ? { chain: x(p.chain) } : {}),
    ...(p.private_key !== undefined ? { private_key: x(p.private_key) } : {}),
    ...(p.private_key_passphrase_file !== undefined ? { private_key_passphrase_file: x(p.private_key_passphrase_file) } : {}),
    ...(p.renewal !== undefined
      ? {
          renewal: {
            ...p.renewal,
            ...(p.renewal.trust_anchor_certificate !== undefined
              ? { trust_anchor_certificate: x(p.renewal.trust_anchor_certificate) }
              : {}),
            ...(p.renewal.ca_dir !== undefined ? { ca_dir: x(p.renewal.ca_dir) } : {}),
          },
        }
      : {}),
  } as AwsRolesAnywhereProfileConfig;
}
