/** `credport token rotate`: a new ECS bearer token, taken up by the running daemon without a restart. */
import { rotateTokenFile } from '../../server/token.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { loadCliConfig } from '../shared.js';
import { daemonRunning, signalReload } from '../signal-reload.js';

const HELP = `Usage: credport token rotate [options]

Replaces the daemon's bearer token ([daemon] token_file) with a new random
one, atomically, and tells the running daemon (SIGHUP), which takes it up
without a restart. From then on the old token is refused.

SDKs that read the token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE read it
again on each credentials request and keep working. A shell that exported
the token itself (AWS_CONTAINER_AUTHORIZATION_TOKEN) needs 'credport env'
again. The daemon also writes a new token at every start.

Options:
  -c, --config PATH  config file
  -h, --help         show this help`;

export const tokenRotateCommand: Command = {
  name: 'token rotate',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('token rotate', argv, {});
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const cfg = loadCliConfig(values.config, io);
    const file = cfg.daemon.tokenFile;
    try {
      rotateTokenFile(file);
    } catch (err) {
      throw new CliError(`cannot replace the token: ${(err as Error).message}`, EXIT.config);
    }
    if (!daemonRunning(cfg)) {
      io.stdout(`replaced the token in ${file}; no daemon is running, and it writes a new one when it starts anyway\n`);
      return EXIT.ok;
    }
    const r = await signalReload(cfg);
    io.stdout(`replaced the token in ${file}; the daemon (pid ${r.pid}) now accepts only the new one\n`);
    return EXIT.ok;
  },
};
