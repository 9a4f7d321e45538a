/** `credport key show` and `credport key delete`. */
import { createInterface } from 'node:readline/promises';
import { publishedJwk } from '../../identity/issuer-documents.js';
import { removeKey } from '../../keys/open-signer.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { openConfiguredSigner } from '../shared.js';

const SHOW_HELP = `Usage: credport key show [options]

Prints the device key's public JWK (as published in the JWKS), its RFC 7638
thumbprint (the JWT kid) and where the key lives. Nothing secret is printed.

Options:
  --json             print one JSON object
  -c, --config PATH  config file
  -h, --help         show this help`;

const DELETE_HELP = `Usage: credport key delete [options]

Destroys the device key (file, PKCS#11 token object or Secure Enclave key).
There is no undo: every role that trusts this key's subject stops working for
this device. Asks you to type the first 8 characters of the key's thumbprint.

Options:
  --yes              do not ask (for scripts)
  -c, --config PATH  config file
  -h, --help         show this help`;

export const keyShowCommand: Command = {
  name: 'key show',
  help: SHOW_HELP,
  async run(argv, io) {
    const { values } = parseFlags('key show', argv, { json: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${SHOW_HELP}\n`);
      return EXIT.ok;
    }
    const { signer } = await openConfiguredSigner(values.config, io);
    try {
      const d = signer.describe();
      const jwk = publishedJwk(signer.publicJwk(), signer.thumbprint);
      if (values.json) {
        io.stdout(
          `${JSON.stringify({ thumbprint: signer.thumbprint, backend: d.backend, location: d.location, userPresence: d.userPresence, jwk }, null, 2)}\n`,
        );
      } else {
        io.stdout(
          [
            `backend:       ${d.backend}`,
            `location:      ${d.location}`,
            `user presence: ${d.userPresence ? 'required for every signature (profiles refresh on demand)' : 'no'}`,
            `thumbprint:    ${signer.thumbprint}   (JWT kid; default subject device:${signer.thumbprint})`,
            `public JWK:    ${JSON.stringify(jwk)}`,
            '',
          ].join('\n'),
        );
      }
    } finally {
      await signer.close();
    }
    return EXIT.ok;
  },
};

export const keyDeleteCommand: Command = {
  name: 'key delete',
  help: DELETE_HELP,
  async run(argv, io) {
    const { values } = parseFlags('key delete', argv, { yes: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${DELETE_HELP}\n`);
      return EXIT.ok;
    }
    const { cfg, signer } = await openConfiguredSigner(values.config, io);
    const thumbprint = signer.thumbprint;
    const where = signer.describe().location;
    await signer.close();
    if (!values.yes) {
      if (!process.stdin.isTTY)
        throw new CliError(
          'refusing to delete the key without a terminal to confirm on',
          EXIT.usage,
          'pass --yes to delete without asking',
        );
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(`Delete the key at ${where} (kid ${thumbprint})?\nType ${thumbprint.slice(0, 8)} to confirm: `);
      rl.close();
      if (answer.trim() !== thumbprint.slice(0, 8)) throw new CliError('not confirmed; the key is unchanged', EXIT.failure);
    }
    try {
      await removeKey(cfg.key);
    } catch (err) {
      throw new CliError(`could not delete the key: ${(err as Error).message}`, EXIT.failure);
    }
    io.stdout(`deleted key ${thumbprint} (${where}); remove its kid from the published JWKS too\n`);
    return EXIT.ok;
  },
};
