/** `credport setup aws`: the AWS side (issuer, role, Roles Anywhere) as CloudFormation stacks. */
import { existsSync } from 'node:fs';
import { configPath } from '../../config/paths.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { loadCliConfig } from '../shared.js';

const HELP = `Usage: credport setup aws [issuer] [role] [rolesanywhere] [options]

Creates (or updates) the AWS side of credport as CloudFormation stacks, each
through a change set whose changes are shown before it runs:

  issuer         NAME-issuer: a private S3 bucket (public access blocked,
                 encrypted, versioned) behind CloudFront with origin access
                 control, and the IAM OIDC provider for the distribution's
                 URL with client id sts.amazonaws.com ([oidc] audience)
  role           NAME-role: the role devices assume with their JWT; its trust
                 policy pins aud and the device's sub (--subject, else this
                 device's), or with --fleet any device:* carrying the
                 [oidc] principal_tags session tags
  rolesanywhere  NAME-rolesanywhere: a trust anchor from --ca-cert, a role
                 trusting IAM Roles Anywhere for that anchor (and --cn), and
                 a profile

Without a stack named: issuer, then role. Progress goes to stderr; the
outputs (issuer URL, ARNs) to stdout. After the issuer exists, publish the
device's key into it ('credport oidc publish').

Options:
  --region REGION         where the stacks live (default: $AWS_REGION,
                          $AWS_DEFAULT_REGION, else us-east-1)
  --stack-name NAME       stack name prefix (default: credport)
  --role-name NAME        IAM role name (default: credport-device)
  --subject SUB           a device subject the role admits (repeatable)
  --fleet                 admit by session tags, not one sub per device
  --policy-arn ARN        managed policy to attach to the role (repeatable)
  --max-session-duration SECONDS
                          the role's maximum session (default 3600)
  --issuer URL            role only: the issuer (default: [oidc] issuer)
  --ca-cert PATH          rolesanywhere: the CA certificate (must be a CA)
  --cn NAME               rolesanywhere: a certificate CN admitted
                          (repeatable; default: any certificate of the CA)
  --certificate PATH      rolesanywhere with --write-config: the device
                          certificate for a new profile
  --profile NAME          credport profile to write (default: the default)
  --print-template        print the named stack's template (default: issuer), deploy nothing
  --dry-run               create and show the change sets, then delete
                          them; nothing changes
  --write-config          write the issuer URL, publish bucket and
                          distribution, and ARNs into the config
  --endpoint URL          CloudFormation endpoint override
  -c, --config PATH       credport config file
  -h, --help              show this help

Credentials come from the AWS SDK's usual chain (AWS_PROFILE, SSO, ...).`;

const PART_NAMES = ['issuer', 'role', 'rolesanywhere'] as const;

export const setupAwsCommand: Command = {
  name: 'setup aws',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags(
      'setup aws',
      argv,
      {
        region: { type: 'string' },
        'stack-name': { type: 'string' },
        'role-name': { type: 'string' },
        subject: { type: 'string', multiple: true },
        fleet: { type: 'boolean' },
        'policy-arn': { type: 'string', multiple: true },
        'max-session-duration': { type: 'string' },
        issuer: { type: 'string' },
        'ca-cert': { type: 'string' },
        cn: { type: 'string', multiple: true },
        certificate: { type: 'string' },
        profile: { type: 'string', short: 'p' },
        'print-template': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        'write-config': { type: 'boolean' },
        endpoint: { type: 'string' },
      },
      3,
    );
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const parts = [...new Set(positionals)];
    for (const p of parts) {
      if (!(PART_NAMES as readonly string[]).includes(p)) {
        throw new CliError(`unknown stack "${p}"`, EXIT.usage, `name issuer, role or rolesanywhere; see 'credport setup aws --help'`);
      }
    }
    const maxSessionDuration = Number(values['max-session-duration'] ?? '3600');
    if (!Number.isInteger(maxSessionDuration) || maxSessionDuration < 3600 || maxSessionDuration > 43200) {
      throw new CliError('--max-session-duration: expected whole seconds from 3600 to 43200', EXIT.usage);
    }
    const file = configPath(values.config, io.env);
    const config = existsSync(file) ? loadCliConfig(values.config, io) : undefined;
    const { runSetup } = await import('../../clouds/aws/setup/run.js');
    return runSetup(
      {
        // --print-template alone prints the first stack (the issuer's); the others are named.
        parts: (parts.length > 0 ? parts : values['print-template'] === true ? ['issuer'] : ['issuer', 'role']) as Array<
          (typeof PART_NAMES)[number]
        >,
        region: values.region ?? io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        stackName: values['stack-name'] ?? 'credport',
        roleName: values['role-name'] ?? 'credport-device',
        fleet: values.fleet === true,
        subjects: values.subject ?? [],
        policyArns: values['policy-arn'] ?? [],
        maxSessionDuration,
        ...(values.issuer !== undefined ? { issuer: values.issuer } : {}),
        ...(values['ca-cert'] !== undefined ? { caCert: values['ca-cert'] } : {}),
        cns: values.cn ?? [],
        ...(values.profile !== undefined ? { profile: values.profile } : {}),
        ...(values.certificate !== undefined ? { certificate: values.certificate } : {}),
        printTemplate: values['print-template'] === true,
        dryRun: values['dry-run'] === true,
        writeConfig: values['write-config'] === true,
        ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}),
        // Tests against a local endpoint poll faster than the 5 s real stacks warrant.
        ...(io.env.CREDPORT_SETUP_POLL_MS ? { pollMs: Math.max(10, Number(io.env.CREDPORT_SETUP_POLL_MS) || 5000) } : {}),
        config,
        configFile: file,
      },
      io,
    );
  },
};
