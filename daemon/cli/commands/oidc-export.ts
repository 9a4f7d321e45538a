/** `credport oidc export DIR`: the issuer's discovery document and JWKS, merged with other devices' keys. */
import { resolve } from 'node:path';
import { exportIssuer, IssuerExportError, JwksFullError, publishedJwk } from '../../identity/issuer-documents.js';
import { DirLockError } from '../../issuer/dir-lock.js';
import { openRsaSigner, openSigner } from '../../keys/open-signer.js';
import type { KeySigner } from '../../keys/signer.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { loadCliConfig } from '../shared.js';

const HELP = `Usage: credport oidc export DIR [options]

Writes DIR/.well-known/openid-configuration and DIR/.well-known/jwks.json for
the [oidc] issuer. An existing JWKS is merged: other devices' keys are kept,
this device's key is added or updated, and exporting again changes nothing.
With an [rsa_key] table its RSA key is published beside the device key (each
key names its alg: ES256, RS256).
Exports into one directory at once take turns (a lock file in DIR), so none
loses another's key. At most 100 keys (IAM's limit; see docs/fleet.md).
To publish straight to S3 with conditional writes: 'credport oidc publish'.
Publish DIR at the issuer URL (S3 + CloudFront, any static HTTPS host).
AWS IAM and Google Cloud both read it there. A Google workload identity
provider can also take the JWKS itself, with no host at all:
  gcloud iam workload-identity-pools providers update-oidc ... \
    --jwk-json-path=DIR/.well-known/jwks.json

Options:
  -c, --config PATH   config file
  -h, --help          show this help`;

export const oidcExportCommand: Command = {
  name: 'oidc export',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags('oidc export', argv, {}, 1);
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const dir = positionals[0];
    if (!dir) throw new CliError('missing DIR', EXIT.usage, "see 'credport oidc export --help'");
    const cfg = loadCliConfig(values.config, io);
    if (!cfg.oidc) throw new CliError(`${cfg.file}: no [oidc] table with an issuer`, EXIT.config);
    const signers: KeySigner[] = [];
    try {
      signers.push(await openSigner(cfg.key));
      if (cfg.rsaKey) signers.push(await openRsaSigner(cfg.rsaKey));
    } catch (err) {
      await Promise.all(signers.map((s) => s.close()));
      throw new CliError((err as Error).message, EXIT.config);
    }
    try {
      const keys = signers.map((s) => publishedJwk(s.publicJwk(), s.thumbprint));
      const result = exportIssuer(resolve(dir), cfg.oidc.issuer, keys);
      const mine = signers.map((s) => `${s.thumbprint} ${s.algorithm}`).join(', ');
      io.stdout(
        `${result.changed ? 'wrote' : 'unchanged'}: ${result.discoveryFile}\n` +
          `${result.changed ? 'wrote' : 'unchanged'}: ${result.jwksFile} (${result.keyCount} key${result.keyCount === 1 ? '' : 's'}, this device: ${mine})\n` +
          `publish ${resolve(dir)} at ${cfg.oidc.issuer}\n`,
      );
    } catch (err) {
      // A malformed existing document is a file problem the user fixes, like a bad config: exit 3.
      if (err instanceof IssuerExportError) throw new CliError(err.message, EXIT.config);
      if (err instanceof JwksFullError || err instanceof DirLockError) throw new CliError(err.message, EXIT.failure);
      throw err;
    } finally {
      await Promise.all(signers.map((s) => s.close()));
    }
    return EXIT.ok;
  },
};
