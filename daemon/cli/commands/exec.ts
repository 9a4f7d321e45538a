/**
 * `credport exec -- CMD ARGS...`: runs a command whose AWS SDK fetches (and refreshes) its
 * credentials from the daemon, or, with --env-credentials, gets static ones fetched once.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { readTokenFile } from '../../server/token-file.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { credentialEnv, credentialsUrl } from '../../clouds/aws/cli.js';
import type { AwsCredentials } from '../../clouds/aws/credentials.js';
import type { CliIo } from '../io.js';
import { cloudCliOf, requireProfile } from '../profile-arg.js';
import { locateDaemon } from '../daemon-locator.js';
import { askDaemon, expectedDaemonUid, loadCliConfig } from '../shared.js';
import { fetchCredentials } from './auth.js';

const HELP = `Usage: credport exec [options] -- COMMAND [ARGS...]

Runs COMMAND (directly, not through a shell) with the container-credentials
variables set, so its AWS SDK fetches credentials from the daemon and
refreshes them there for as long as it runs:

  credport exec --profile dev -- aws s3 ls

  AWS_CONTAINER_CREDENTIALS_FULL_URI      the profile's URL on the daemon
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE  the daemon's token file
  AWS_CONTAINER_AUTHORIZATION_TOKEN       the token itself, for older SDKs

AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE and
AWS_DEFAULT_PROFILE are removed from COMMAND's environment: SDKs prefer them
to the container variables, so they would silently win.

Options:
  --profile NAME      profile (default: the default profile)
  --env-credentials   export static AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                      AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION instead,
                      fetched once (as 'credport auth' does), for tools that
                      read nothing else; they do not refresh
  -c, --config PATH   config file
  -h, --help          show this help

Exit code: COMMAND's own, or 128+N when a signal N ended it; 127 when COMMAND
is not found, 126 when it cannot be run. SIGINT, SIGTERM and SIGHUP sent to
credport are passed on to COMMAND.`;

/** Variables that would take precedence over (or confuse) what exec sets. */
const SHADOWING = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
];
const CONTAINER = [
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
];
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function splitAtDashes(argv: string[]): { flags: string[]; command: string[] } {
  const i = argv.indexOf('--');
  if (i < 0) {
    if (argv.some((a) => a === '-h' || a === '--help')) return { flags: argv, command: [] };
    throw new CliError('no command to run', EXIT.usage, "put it after '--': credport exec [--profile NAME] -- COMMAND [ARGS...]");
  }
  return { flags: argv.slice(0, i), command: argv.slice(i + 1) };
}

function childEnv(io: CliIo, set: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...io.env };
  for (const k of [...SHADOWING, ...CONTAINER]) delete env[k];
  return { ...env, ...set };
}

/** Runs the child to its end; resolves with the exit code credport should return. */
function run(command: string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env, shell: false });
    // While the child runs, these signals are its to handle; credport exits with the child.
    const handlers = FORWARDED.map((sig) => {
      const h = () => {
        child.kill(sig);
      };
      process.on(sig, h);
      return [sig, h] as const;
    });
    const done = (code: number) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(code);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      const notFound = err.code === 'ENOENT';
      io.stderr(`credport: cannot run ${JSON.stringify(command[0])}: ${notFound ? 'command not found' : (err.code ?? err.message)}\n`);
      done(notFound ? 127 : 126);
    });
    child.on('exit', (code, signal) => {
      if (signal) done(128 + (constants.signals[signal] ?? 0));
      else done(code ?? 1);
    });
  });
}

export const execCommand: Command = {
  name: 'exec',
  help: HELP,
  async run(argv, io) {
    const { flags, command } = splitAtDashes(argv);
    const { values } = parseFlags('exec', flags, { profile: { type: 'string', short: 'p' }, 'env-credentials': { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (command.length === 0 || command[0] === '') throw new CliError("no command after '--'", EXIT.usage, "see 'credport exec --help'");
    const cfg = loadCliConfig(values.config, io);
    const profile = values.profile ?? cfg.defaults.aws ?? cfg.defaultProfile;
    requireProfile(cfg, profile);
    const { cloud } = await cloudCliOf(cfg, profile);
    if (cloud.name !== 'aws') {
      throw new CliError(
        `profile ${profile} is a ${cloud.title} profile; exec sets AWS variables`,
        EXIT.usage,
        `for ${cloud.title}, eval "$(credport env --profile ${profile})"`,
      );
    }

    let set: Record<string, string>;
    if (values['env-credentials']) {
      set = credentialEnv((await fetchCredentials(cfg, profile, { command: 'exec' })) as AwsCredentials);
    } else {
      let token: string;
      try {
        token = readTokenFile(cfg.daemon.tokenFile);
      } catch (err) {
        throw new CliError((err as Error).message, EXIT.config, "start the daemon once ('credport serve') to create the token");
      }
      const base = locateDaemon(cfg).base;
      // Not fatal (the daemon may be starting), but the SDK's own error would not say why.
      const health = await askDaemon(base, '/health', {}, 2000, expectedDaemonUid(cfg));
      if (!health.reachable)
        io.stderr(
          `credport: warning: the daemon is not running at ${base}; COMMAND will get no credentials until it is ('credport serve')\n`,
        );
      set = {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: credentialsUrl(base, cfg, profile),
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: cfg.daemon.tokenFile,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: token,
      };
    }
    return run(command, childEnv(io, set), io);
  },
};
