/** `credport configure aws`: a credential_process profile in the AWS shared config file. */
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { configPath, xdgConfigHome } from '../../config/paths.js';
import { writeFileAtomic } from '../../util/secure-file.js';
import { parseFlags } from '../args.js';
import { isSafeProfileName, sectionHeader, upsertProfile } from '../aws-config-file.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import type { CliIo } from '../io.js';
import { requireProfile } from '../profile-arg.js';
import { loadCliConfig } from '../shared.js';

const HELP = `Usage: credport configure aws [options]

Writes (or updates) a profile in the AWS shared config file so that the AWS
CLI and every SDK get its credentials from credport:

  [profile dev]
  credential_process = /usr/local/bin/credport auth --profile dev

Only the keys credport owns (credential_process) are set; everything else in
the file, comments included, is kept byte for byte. The file is replaced
atomically and keeps its mode (a new one is created 0600, in a 0700 ~/.aws).

Options:
  --profile NAME      credport profile (default: the default profile)
  --aws-profile NAME  AWS profile name to write (default: the credport name;
                      "default" writes [default])
  --method METHOD     credential_process (the only one AWS config files can
                      express; for the container endpoint use 'credport exec'
                      or 'credport env')
  --file PATH         AWS config file (default: $AWS_CONFIG_FILE, else
                      ~/.aws/config)
  --dry-run           print the resulting section, change nothing
  -c, --config PATH   credport config file (written into the command when it
                      is not the default one)
  -h, --help          show this help`;

/** Keys that make AWS tools ignore credential_process or use it for something else. */
const CONFLICTING = [
  'aws_access_key_id',
  'aws_secret_access_key',
  'aws_session_token',
  'role_arn',
  'source_profile',
  'credential_source',
  'web_identity_token_file',
  'sso_session',
  'sso_start_url',
  'sso_account_id',
  'login_session',
];

function home(io: CliIo): string {
  return io.env.HOME && io.env.HOME.length > 0 ? io.env.HOME : homedir();
}

function awsConfigFile(flag: string | undefined, io: CliIo): string {
  const given = flag ?? io.env.AWS_CONFIG_FILE;
  if (!given) return join(home(io), '.aws', 'config');
  const expanded = given === '~' || given.startsWith('~/') ? home(io) + given.slice(1) : given;
  return isAbsolute(expanded) ? expanded : resolve(expanded);
}

/** Double-quoted for POSIX sh and Python's shlex (how SDKs split credential_process), when needed. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** How to start this credport from a credential_process: its script if it can be run, else through node. */
function credportProgram(): string[] {
  const script = resolve(process.argv[1] ?? '');
  try {
    accessSync(script, constants.X_OK);
    return [script];
  } catch {
    // A build leaves the entry point without its run bit; node runs it regardless.
    return [process.execPath, script];
  }
}

export const configureAwsCommand: Command = {
  name: 'configure aws',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('configure aws', argv, {
      profile: { type: 'string', short: 'p' },
      'aws-profile': { type: 'string' },
      method: { type: 'string' },
      file: { type: 'string' },
      'dry-run': { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const method = values.method ?? 'credential_process';
    if (method === 'container') {
      throw new CliError(
        'AWS config files cannot point a profile at a container-credentials endpoint (SDKs read it only from AWS_CONTAINER_* variables; credential_source = EcsContainer needs them too)',
        EXIT.usage,
        'run the tool under \'credport exec --profile NAME -- CMD\', or eval "$(credport env --profile NAME)"',
      );
    }
    if (method !== 'credential_process')
      throw new CliError(`--method: expected credential_process or container, got "${method}"`, EXIT.usage);
    const cfg = loadCliConfig(values.config, io);
    const profile = values.profile ?? cfg.defaultProfile;
    requireProfile(cfg, profile);
    const awsProfile = values['aws-profile'] ?? profile;
    if (!isSafeProfileName(awsProfile)) {
      throw new CliError(
        `--aws-profile: "${awsProfile}" is not a usable AWS profile name`,
        EXIT.usage,
        'use letters, digits and _ . @ + -',
      );
    }

    const args = ['auth', '--profile', profile];
    // The SDK that runs the command may not have this shell's CREDPORT_CONFIG: name a non-default config.
    const cfgPath = configPath(values.config, io.env);
    if (cfgPath !== join(xdgConfigHome(io.env), 'credport', 'config.toml')) args.push('--config', cfgPath);
    const commandLine = [...credportProgram(), ...args].map(shellWord).join(' ');

    const file = awsConfigFile(values.file, io);
    let target = file;
    let original = '';
    let mode = 0o600;
    let exists = false;
    try {
      target = realpathSync(file); // a dotfile manager's symlink stays a symlink
      original = readFileSync(target, 'utf8');
      mode = statSync(target).mode & 0o777;
      exists = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EXIT.config);
    }
    const edit = upsertProfile(original, awsProfile, { credential_process: commandLine }, CONFLICTING);
    const warn =
      edit.conflicts.length > 0
        ? `warning: ${sectionHeader(awsProfile)} also sets ${edit.conflicts.join(', ')}, which AWS tools use instead of (or together with) credential_process; remove them if that is not what you want\n`
        : '';
    if (values['dry-run']) {
      io.stdout(edit.section);
      if (warn) io.stderr(warn);
      return EXIT.ok;
    }
    if (edit.changed) {
      if (!exists) mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      try {
        writeFileAtomic(target, edit.text, mode);
        chmodSync(target, mode); // the umask may have narrowed it
      } catch (err) {
        throw new CliError(`cannot write ${target}: ${(err as Error).message}`, EXIT.config);
      }
    }
    if (warn) io.stderr(warn);
    io.stdout(
      `${edit.changed ? (exists ? 'updated' : 'created') : 'unchanged'}: ${sectionHeader(awsProfile)} in ${file}\ntry: aws sts get-caller-identity --profile ${awsProfile}\n`,
    );
    return EXIT.ok;
  },
};
