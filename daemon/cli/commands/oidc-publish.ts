/** `credport oidc publish` and `credport oidc revoke`: this device's key into, or a key out of, the live JWKS. */
import { mergeJwks, publishedJwk, withoutKid } from '../../identity/issuer-documents.js';
import { changeIssuer } from '../../issuer/targets.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { changeOptions, describeChange, ISSUER_FLAGS, ISSUER_FLAGS_HELP, issuerCliError, requireOidc, targetOf } from '../issuer-flags.js';
import { loadCliConfig, openConfiguredSigner } from '../shared.js';

const PUBLISH_HELP = `Usage: credport oidc publish [s3://BUCKET[/PREFIX] | DIR] [options]

Merges this device's public key into the live JWKS of the [oidc] issuer and
writes the discovery document if there is none. Other devices' keys are kept.

In S3 the JWKS is read with its ETag, merged, and written back only if
nobody changed it meanwhile (If-Match; If-None-Match: * for the first
write); a device that lost the race reads again and merges again, so any
number of devices may publish at once and no key is lost. Then the two
documents are invalidated in CloudFront when a distribution is known.
In a directory the same happens under a lock file.

IAM reads at most 100 keys of a JWKS: the 101st key is refused (see
docs/fleet.md for sharding the fleet over several issuers, or Roles
Anywhere). AWS credentials come from the usual places (AWS_PROFILE, the
environment, SSO, an instance role).

Default place: [oidc] publish_bucket.

Options:
${ISSUER_FLAGS_HELP}
  -c, --config PATH       config file
  -h, --help              show this help`;

const REVOKE_HELP = `Usage: credport oidc revoke KID [s3://BUCKET[/PREFIX] | DIR] [options]

Removes the key KID from the live JWKS by the same conditional write as
'oidc publish' (or under the directory's lock). Nothing else is changed; a
KID that is not there is an error and nothing is written.

A revocation is not instant: CloudFront may serve the old JWKS until the
invalidation completes, and STS keeps a JWKS it fetched for a while. Until
then the key's tokens still work. To cut the device off at once, also deny
it in IAM: see docs/fleet.md ("Revoking a device").

Default place: [oidc] publish_bucket.

Options:
${ISSUER_FLAGS_HELP}
  -c, --config PATH       config file
  -h, --help              show this help`;

export const oidcPublishCommand: Command = {
  name: 'oidc publish',
  help: PUBLISH_HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags('oidc publish', argv, ISSUER_FLAGS, 1);
    if (values.help) {
      io.stdout(`${PUBLISH_HELP}\n`);
      return EXIT.ok;
    }
    const { cfg, signer } = await openConfiguredSigner(values.config, io);
    const kid = signer.thumbprint;
    const key = publishedJwk(signer.publicJwk(), kid);
    await signer.close();
    const oidc = requireOidc(cfg);
    const target = targetOf(positionals[0], oidc, 'oidc publish');
    const options = changeOptions(values, oidc);
    let result;
    try {
      result = await changeIssuer(target, oidc.issuer, (jwks) => mergeJwks(jwks, key), options);
    } catch (err) {
      issuerCliError(err);
    }
    io.stdout(describeChange(result, 'published') + `this device: ${kid}\n`);
    if (result.warning) io.stderr(`credport: warning: ${result.warning}\n`);
    return EXIT.ok;
  },
};

const KID = /^[A-Za-z0-9_-]{1,128}$/;
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

export const oidcRevokeCommand: Command = {
  name: 'oidc revoke',
  help: REVOKE_HELP,
  async run(argv, io) {
    // A thumbprint is base64url and may start with '-', which the flag parser would take for an
    // option: a word shaped exactly like one (43 characters, RFC 7638 over SHA-256) is the KID.
    const kidWord = argv.findIndex((a) => THUMBPRINT.test(a) && a.startsWith('-'));
    const rest = kidWord >= 0 ? argv.filter((_, i) => i !== kidWord) : argv;
    const parsed = parseFlags('oidc revoke', rest, ISSUER_FLAGS, 2);
    const { values } = parsed;
    const positionals = kidWord >= 0 ? [argv[kidWord] as string, ...parsed.positionals] : parsed.positionals;
    if (values.help) {
      io.stdout(`${REVOKE_HELP}\n`);
      return EXIT.ok;
    }
    const kid = positionals[0];
    if (!kid) throw new CliError('missing KID', EXIT.usage, "see 'credport oidc revoke --help'");
    if (!KID.test(kid)) throw new CliError(`${JSON.stringify(kid.slice(0, 40))} is not a key id (a JWK thumbprint)`, EXIT.usage);
    const cfg = loadCliConfig(values.config, io);
    const oidc = requireOidc(cfg);
    const target = targetOf(positionals[1], oidc, 'oidc revoke');
    const options = changeOptions(values, oidc);
    let result;
    try {
      result = await changeIssuer(
        target,
        oidc.issuer,
        (jwks) => {
          const r = withoutKid(jwks, kid);
          if (!r.removed) throw new CliError(`key ${kid} is not in the JWKS; nothing was changed`, EXIT.failure);
          return r.jwks;
        },
        options,
      );
    } catch (err) {
      if (err instanceof CliError) throw err;
      issuerCliError(err);
    }
    io.stdout(describeChange(result, `revoked ${kid}`));
    if (result.warning) io.stderr(`credport: warning: ${result.warning}\n`);
    return EXIT.ok;
  },
};
