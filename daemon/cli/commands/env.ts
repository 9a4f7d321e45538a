/** `credport env`: the shell exports that point SDKs at the daemon. */
import { readTokenFile } from '../../server/token.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { credentialsUrl } from '../endpoints.js';
import { requireProfile } from '../profile-arg.js';
import { clientBaseUrl, loadCliConfig } from '../shared.js';

const HELP = `Usage: credport env [options]

Prints shell exports that make unmodified AWS SDKs and the AWS CLI fetch
credentials from the daemon:

  eval "$(credport env)"

Options:
  --profile NAME     serve this profile instead of the default
  --inline-token     export AWS_CONTAINER_AUTHORIZATION_TOKEN itself, for older
                     SDKs that do not read the token file (puts the token in
                     your environment, visible to every child process)
  --imds             also export AWS_EC2_METADATA_SERVICE_ENDPOINT (with a
                     trailing "/", which every tested client accepts)
  -c, --config PATH  config file
  -h, --help         show this help`;

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export const envCommand: Command = {
  name: 'env',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('env', argv, { profile: { type: 'string' }, 'inline-token': { type: 'boolean' }, imds: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const cfg = loadCliConfig(values.config, io);
    const profile = values.profile;
    if (profile !== undefined) requireProfile(cfg, profile);
    const base = clientBaseUrl(cfg.daemon.listen);
    const lines = [`export AWS_CONTAINER_CREDENTIALS_FULL_URI=${shq(credentialsUrl(cfg, profile))}`];
    if (values['inline-token']) {
      let token: string;
      try {
        token = readTokenFile(cfg.daemon.tokenFile);
      } catch (err) {
        throw new CliError((err as Error).message, EXIT.config, 'start the daemon once (credport serve) to create the token');
      }
      lines.push(`export AWS_CONTAINER_AUTHORIZATION_TOKEN=${shq(token)}`);
      lines.push('unset AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE');
    } else {
      lines.push(`export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=${shq(cfg.daemon.tokenFile)}`);
      lines.push('unset AWS_CONTAINER_AUTHORIZATION_TOKEN');
    }
    // A relative URI would win over the full one in some SDKs.
    lines.push('unset AWS_CONTAINER_CREDENTIALS_RELATIVE_URI');
    // AWS documents the endpoint without a trailing slash, and the daemon serves both that form and the
    // "//latest/..." paths the JS SDK v2 makes of a slash. The slash is printed anyway because
    // clients that append "latest/api/token" with no separator (Debian 12's awscli 2.9) can use no other
    // form, and no tested client refuses it (docs/clients.md).
    if (values.imds) lines.push(`export AWS_EC2_METADATA_SERVICE_ENDPOINT=${shq(`${base}/`)}`);
    io.stdout(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};
