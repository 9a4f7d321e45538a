/**
 * `credport setup aws`: the stacks in order (issuer, then its role, and Roles Anywhere), each deployed
 * through a change set, and what they produced written into the config. Loaded only by this command,
 * so the CloudFormation client never reaches `credport auth`.
 */
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CliError, EXIT } from '../../../cli/cli-error.js';
import { loadOptional } from '../../../cli/optional-package.js';
import type { CliIo } from '../../../cli/io.js';
import type { ResolvedConfig } from '../../../config/load.js';
import { defaultSubject } from '../../../identity/jwt.js';
import { openSigner } from '../../../keys/open-signer.js';
import { templateJson } from './cfn.js';
import { issuerTemplate } from './issuer-template.js';
import { type Part, checkCredentials, checkRegion, checkStackName, readCaCertificate, stackNameFor } from './preflight.js';
import { type RoleAdmission, roleTemplate } from './role-template.js';
import { rolesAnywhereTemplate } from './rolesanywhere-template.js';
import { type ConfigEdit, writeConfig } from './write-config.js';

export interface SetupOptions {
  parts: Part[];
  region: string;
  stackName: string;
  roleName: string;
  fleet: boolean;
  subjects: string[];
  policyArns: string[];
  maxSessionDuration: number;
  issuer?: string;
  caCert?: string;
  cns: string[];
  profile?: string;
  certificate?: string;
  printTemplate: boolean;
  dryRun: boolean;
  writeConfig: boolean;
  endpoint?: string;
  /** The config, when there is one (setup of the issuer alone needs none). */
  config: ResolvedConfig | undefined;
  configFile: string;
  pollMs?: number;
}

function need<T>(v: T | undefined, message: string, hint: string): T {
  if (v === undefined) throw new CliError(message, EXIT.usage, hint);
  return v;
}

async function admissionOf(o: SetupOptions): Promise<RoleAdmission> {
  if (o.fleet) {
    const tags = o.config?.oidc?.principal_tags;
    if (tags === undefined || Object.keys(tags).length === 0) {
      throw new CliError(
        '--fleet admits devices by session tag, and [oidc] principal_tags names none',
        EXIT.usage,
        'add e.g. principal_tags = { team = "edge" } to [oidc]',
      );
    }
    return { kind: 'tags', tags, subjectPattern: 'device:*' };
  }
  if (o.subjects.length > 0) return { kind: 'subjects', subjects: o.subjects };
  const cfg = need(
    o.config,
    'the role names the device subject, and there is no config to find the device key in',
    'give --subject device:<thumbprint>, or run credport init first',
  );
  if (cfg.oidc?.subject !== undefined) return { kind: 'subjects', subjects: [cfg.oidc.subject] };
  const signer = await openSigner(cfg.key);
  try {
    return { kind: 'subjects', subjects: [defaultSubject(signer)] };
  } finally {
    await signer.close();
  }
}

function audienceOf(o: SetupOptions): string {
  return o.config?.oidc?.audience ?? 'sts.amazonaws.com';
}

async function roleBody(o: SetupOptions, issuerUrl: string): Promise<string> {
  return templateJson(
    roleTemplate({
      issuerUrl,
      audience: audienceOf(o),
      admission: await admissionOf(o),
      sessionTagKeys: Object.keys(o.config?.oidc?.principal_tags ?? {}),
      roleName: o.roleName,
      maxSessionDurationSeconds: o.maxSessionDuration,
      managedPolicyArns: o.policyArns,
    }),
  );
}

function rolesAnywhereBody(o: SetupOptions, caPem: string): string {
  return templateJson(
    rolesAnywhereTemplate({
      caCertificatePem: caPem,
      subject: o.cns.length > 0 ? { CN: o.cns } : {},
      roleName: `${o.roleName}-rolesanywhere`,
      maxSessionDurationSeconds: o.maxSessionDuration,
      sessionDurationSeconds: Math.min(o.maxSessionDuration, 43200),
      managedPolicyArns: o.policyArns,
    }),
  );
}

function checkIssuerUrl(url: string): string {
  if (!/^https:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(url))
    throw new CliError(`the issuer must be an https URL without query or fragment: ${url}`, EXIT.usage);
  return url.replace(/\/+$/, '');
}

export async function runSetup(o: SetupOptions, io: CliIo): Promise<number> {
  checkStackName(o.stackName);
  checkRegion(o.region);
  const caPem = o.parts.includes('rolesanywhere')
    ? readCaCertificate(need(o.caCert, 'rolesanywhere needs the CA certificate', 'give --ca-cert PATH (e.g. from credport ca init)'))
    : undefined;
  const knownIssuer = o.issuer ?? o.config?.oidc?.issuer;
  if (o.parts.includes('role') && !o.parts.includes('issuer')) {
    checkIssuerUrl(need(knownIssuer, 'the role stack needs the issuer URL', 'give --issuer https://..., or set [oidc] issuer'));
  }
  if (o.writeConfig && o.config === undefined)
    throw new CliError('--write-config needs a config file', EXIT.config, 'run credport init first');
  const profileName = o.profile ?? o.config?.defaultProfile ?? 'default';
  if (o.writeConfig && o.parts.includes('rolesanywhere')) {
    const existing = o.config?.profiles.get(`${profileName}`);
    if (existing?.type !== 'aws-rolesanywhere' && o.certificate === undefined) {
      throw new CliError(
        `--write-config: profile ${profileName} is not an aws-rolesanywhere profile, so it needs the device certificate`,
        EXIT.usage,
        'give --certificate PATH, or --profile NAME of an aws-rolesanywhere profile',
      );
    }
  }

  if (o.printTemplate) {
    if (o.parts.length !== 1) {
      throw new CliError(
        '--print-template prints one stack: name it',
        EXIT.usage,
        'credport setup aws issuer --print-template (or role, rolesanywhere)',
      );
    }
    const part = o.parts[0];
    if (part === 'issuer') io.stdout(templateJson(issuerTemplate({ audience: audienceOf(o) })));
    else if (part === 'role') io.stdout(await roleBody(o, checkIssuerUrl(knownIssuer as string)));
    else io.stdout(rolesAnywhereBody(o, caPem as string));
    return EXIT.ok;
  }

  // deploy.ts imports the CloudFormation client too: both only now, so --print-template works without it.
  const { CloudFormationClient } = await loadOptional(
    '@aws-sdk/client-cloudformation',
    'setup aws',
    () => import('@aws-sdk/client-cloudformation'),
  );
  const { deployStack, oneLine } = await import('./deploy.js');
  const client: CloudFormationClient = new CloudFormationClient({
    region: o.region,
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
    maxAttempts: 5,
  });
  try {
    await checkCredentials(() => client.config.credentials());
    const log = (line: string): void => io.stderr(`${line}\n`);
    const deploy = async (part: Part, templateBody: string) => {
      try {
        return await deployStack({
          client,
          stackName: stackNameFor(o.stackName, part),
          kind: part,
          templateBody,
          dryRun: o.dryRun,
          log,
          ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
        });
      } catch (err) {
        if (err instanceof CliError) throw err;
        const e = err as { name?: string; message?: string; code?: string };
        const unreachable = e.code === 'ENOTFOUND' || /ENOTFOUND/.test(e.message ?? '');
        throw new CliError(
          `stack ${stackNameFor(o.stackName, part)}: ${oneLine(e.name ?? 'Error', 64)}: ${oneLine((e.message ?? '').split('\n')[0] ?? '')}`,
          EXIT.failure,
          unreachable ? `no CloudFormation endpoint found for region ${o.region}: check --region` : undefined,
        );
      }
    };
    const edits: ConfigEdit[] = [];
    const results: Record<string, string> = {};
    let issuerUrl = knownIssuer;
    if (o.parts.includes('issuer')) {
      const r = await deploy('issuer', templateJson(issuerTemplate({ audience: audienceOf(o) })));
      Object.assign(results, r.outputs);
      if (r.outputs.IssuerUrl !== undefined) {
        issuerUrl = r.outputs.IssuerUrl;
        edits.push({
          table: 'oidc',
          values: {
            issuer: r.outputs.IssuerUrl,
            ...(r.outputs.BucketName ? { publish_bucket: `s3://${r.outputs.BucketName}` } : {}),
            ...(r.outputs.DistributionId ? { publish_distribution_id: r.outputs.DistributionId } : {}),
          },
        });
      }
    }
    if (o.parts.includes('role')) {
      if (issuerUrl === undefined) {
        // A dry run of a new issuer has no URL yet: the role's change set cannot be shown.
        io.stderr(`stack ${stackNameFor(o.stackName, 'role')}: needs the issuer's URL, known once the issuer stack exists\n`);
      } else {
        const r = await deploy('role', await roleBody(o, checkIssuerUrl(issuerUrl)));
        if (r.outputs.RoleArn !== undefined) {
          results.RoleArn = r.outputs.RoleArn;
          const existing = o.config?.profiles.get(profileName);
          edits.push({
            table: `profiles.${profileName}`,
            values: { ...(existing === undefined ? { type: 'aws-oidc' } : {}), role_arn: r.outputs.RoleArn, region: o.region },
          });
        }
      }
    }
    if (o.parts.includes('rolesanywhere') && caPem !== undefined) {
      const r = await deploy('rolesanywhere', rolesAnywhereBody(o, caPem));
      const { TrustAnchorArn, ProfileArn, RoleArn } = r.outputs;
      if (TrustAnchorArn && ProfileArn && RoleArn) {
        Object.assign(results, { TrustAnchorArn, ProfileArn, RolesAnywhereRoleArn: RoleArn });
        const raProfile = o.parts.includes('role') ? `${profileName}-rolesanywhere` : profileName;
        const existing = o.config?.profiles.get(raProfile);
        edits.push({
          table: `profiles.${raProfile}`,
          values: {
            ...(existing === undefined ? { type: 'aws-rolesanywhere' } : {}),
            ...(o.certificate !== undefined ? { certificate: o.certificate } : {}),
            trust_anchor_arn: TrustAnchorArn,
            profile_arn: ProfileArn,
            role_arn: RoleArn,
          },
        });
      }
    }
    for (const [k, v] of Object.entries(results)) io.stdout(`${k} = ${v}\n`);
    if (o.writeConfig && !o.dryRun && edits.length > 0) {
      const file = writeConfig(o.configFile, edits, io.env);
      io.stderr(`wrote ${edits.map((e) => `[${e.table}]`).join(', ')} in ${file}\n`);
    }
    if (o.parts.includes('issuer') && !o.dryRun) io.stderr("next: publish this device's key with 'credport oidc publish'\n");
    return EXIT.ok;
  } finally {
    client.destroy();
  }
}
