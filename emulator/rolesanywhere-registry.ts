// The slice of IAM Roles Anywhere that CreateSession consults: trust anchors (a CA bundle, regional)
// and profiles (which roles sessions may assume, for how long at most). As in iam.ts, setup mistakes
// throw EmulatorConfigError at once.

import { EmulatorConfigError } from './iam.js';
import { parseCertificate, type ParsedCertificate } from './x509-verify.js';

export interface TrustAnchorSpec {
  /** arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>; requests are scoped to its region. */
  arn: string;
  /** One or more PEM CA certificates (the "certificate bundle" source of a real trust anchor). */
  caCertificatePem: string;
}

export interface RolesAnywhereProfileSpec {
  /** arn:aws:rolesanywhere:<region>:<account>:profile/<id> */
  arn: string;
  roleArns: string[];
  /** The longest session this profile vends, 900-43200; default 3600 as in the service. */
  durationSeconds?: number;
  /** Whether a roleSessionName in the request is honoured; default false as in the service. */
  acceptRoleSessionName?: boolean;
}

interface RegionalArn {
  arn: string;
  partition: string;
  region: string;
  accountId: string;
  id: string;
}

export interface TrustAnchor extends RegionalArn {
  readonly certificates: readonly ParsedCertificate[];
}

export interface RolesAnywhereProfile extends RegionalArn {
  readonly roleArns: readonly string[];
  readonly durationSeconds: number;
  readonly acceptRoleSessionName: boolean;
}

const ARN = /^arn:(aws|aws-cn|aws-us-gov):rolesanywhere:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):(trust-anchor|profile)\/([0-9a-zA-Z-]{1,64})$/;
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::\d{12}:role\/\S+$/;

export function parseRegionalArn(arn: unknown, type: 'trust-anchor' | 'profile'): RegionalArn | undefined {
  const m = typeof arn === 'string' ? ARN.exec(arn) : null;
  if (m === null || m[4] !== type) return undefined;
  return { arn: arn as string, partition: m[1] ?? '', region: m[2] ?? '', accountId: m[3] ?? '', id: m[5] ?? '' };
}

function pemBlocks(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g)].map((m) =>
    Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'),
  );
}

export class RolesAnywhereRegistry {
  private readonly anchors = new Map<string, TrustAnchor>();
  private readonly profiles = new Map<string, RolesAnywhereProfile>();

  createTrustAnchor(spec: TrustAnchorSpec): TrustAnchor {
    const parsed = parseRegionalArn(spec?.arn, 'trust-anchor');
    if (parsed === undefined) {
      throw new EmulatorConfigError(
        'ValidationError',
        `Trust anchor ARN must look like arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>: ${String(spec?.arn)}`,
      );
    }
    if (this.anchors.has(parsed.arn)) throw new EmulatorConfigError('EntityAlreadyExists', `Trust anchor ${parsed.arn} already exists.`);
    const blocks = typeof spec.caCertificatePem === 'string' ? pemBlocks(spec.caCertificatePem) : [];
    if (blocks.length === 0) throw new EmulatorConfigError('ValidationError', 'caCertificatePem must hold at least one PEM certificate');
    const certificates = blocks.map((der, i) => {
      try {
        const cert = parseCertificate(der, `CA certificate ${i + 1}`);
        if (!cert.node.ca)
          throw new EmulatorConfigError('ValidationError', `CA certificate ${i + 1} (${cert.subjectText}) is not a CA certificate`);
        return cert;
      } catch (err) {
        if (err instanceof EmulatorConfigError) throw err;
        throw new EmulatorConfigError('ValidationError', (err as Error).message);
      }
    });
    const anchor: TrustAnchor = { ...parsed, certificates: Object.freeze(certificates) };
    this.anchors.set(anchor.arn, anchor);
    return anchor;
  }

  createProfile(spec: RolesAnywhereProfileSpec): RolesAnywhereProfile {
    const parsed = parseRegionalArn(spec?.arn, 'profile');
    if (parsed === undefined) {
      throw new EmulatorConfigError(
        'ValidationError',
        `Profile ARN must look like arn:aws:rolesanywhere:<region>:<account>:profile/<id>: ${String(spec?.arn)}`,
      );
    }
    if (this.profiles.has(parsed.arn)) throw new EmulatorConfigError('EntityAlreadyExists', `Profile ${parsed.arn} already exists.`);
    const roleArns: unknown = spec.roleArns;
    if (
      !Array.isArray(roleArns) ||
      roleArns.length > 250 ||
      !roleArns.every((r): r is string => typeof r === 'string' && ROLE_ARN.test(r))
    ) {
      throw new EmulatorConfigError('ValidationError', 'roleArns must be an array of at most 250 role ARNs');
    }
    const durationSeconds = spec.durationSeconds ?? 3600;
    if (!Number.isInteger(durationSeconds) || durationSeconds < 900 || durationSeconds > 43200) {
      throw new EmulatorConfigError('ValidationError', 'durationSeconds must be an integer from 900 to 43200');
    }
    const profile: RolesAnywhereProfile = {
      ...parsed,
      roleArns: Object.freeze([...roleArns]),
      durationSeconds,
      acceptRoleSessionName: spec.acceptRoleSessionName === true,
    };
    this.profiles.set(profile.arn, profile);
    return profile;
  }

  getTrustAnchor(arn: string): TrustAnchor | undefined {
    return this.anchors.get(arn);
  }

  getProfile(arn: string): RolesAnywhereProfile | undefined {
    return this.profiles.get(arn);
  }
}
