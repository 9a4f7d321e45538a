/**
 * `credport cert renew`: what the daemon does on its own schedule, by hand. The CSR is signed by the
 * key the certificate certifies, inside its backend; with --new-key (a profile's private_key file only)
 * a new key of the same kind is made and installed with its certificate, for planned key rotation.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AwsCredentials } from '../../clouds/aws/credentials.js';
import type { AwsRolesAnywhereProfileConfig } from '../../clouds/aws/schema.js';
import type { ResolvedConfig } from '../../config/load.js';
import type { KeySigner } from '../../keys/signer.js';
import { systemClock } from '../../refresh/clock.js';
import { writeFileAtomic } from '../../util/secure-file.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import type { CliIo } from '../io.js';
import { openConfiguredSigner } from '../shared.js';

const HELP = `Usage: credport cert renew [--profile P] [--now] [--new-key] [options]

Renews the certificate of each aws-rolesanywhere profile that has a
[profiles.NAME.renewal] table (or only --profile P), as the daemon does on its
own: a CSR signed by the same key inside its backend, sent to the configured
issuer (aws-private-ca, command or credport-ca), the answer checked (same key,
valid dates, chains to the trust anchor, digitalSignature) and written in
place atomically. A running daemon uses it at its next CreateSession.

Without --now, a certificate is renewed only once it is past the 'at'
fraction of its lifetime (default 2/3).

Options:
  --profile P        only this profile
  --now              renew even if not due yet
  --new-key          rotate the key too: a new key of the same type replaces
                     the profile's private_key file (0600). Not for the device
                     key, which other profiles and the OIDC issuer share.
  -c, --config PATH  config file
  -h, --help         show this help`;

function newKeyLike(current: KeyObject): KeyObject {
  if (current.asymmetricKeyType === 'rsa') {
    return generateKeyPairSync('rsa', { modulusLength: current.asymmetricKeyDetails?.modulusLength ?? 2048 }).privateKey;
  }
  const curve = current.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

async function renewWithNewKey(
  name: string,
  p: AwsRolesAnywhereProfileConfig,
  cfg: ResolvedConfig,
  signer: KeySigner,
  env: CliIo['env'],
): Promise<string> {
  if (p.private_key === undefined) {
    throw new CliError(
      `profile ${name}: --new-key replaces a profile's private_key file; this profile signs with the device key`,
      EXIT.usage,
      'rotate the device key with credport key delete + credport init, then cert csr',
    );
  }
  if (p.private_key_passphrase_file !== undefined || p.private_key_passphrase_env !== undefined) {
    throw new CliError(`profile ${name}: --new-key cannot write an encrypted key; rotate ${p.private_key} by hand`, EXIT.usage);
  }
  if (p.renewal === undefined) throw new CliError(`profile ${name} has no [profiles.${name}.renewal] table`, EXIT.usage);
  const { createPrivateKey } = await import('node:crypto');
  const { readSecretFile } = await import('../../util/secure-file.js');
  const { fromKeyFile } = await import('../../x509/signing-key.js');
  const { createCsr } = await import('../../x509/csr.js');
  const { CertificateSource } = await import('../../clouds/aws/rolesanywhere/certificates.js');
  const { issuerFor, trustAnchorPath } = await import('../../clouds/aws/rolesanywhere/renewal/from-config.js');
  const { checkRenewedChain, readTrustAnchor } = await import('../../clouds/aws/rolesanywhere/renewal/check-renewed.js');
  const { fileInstaller } = await import('../../clouds/aws/rolesanywhere/renewal/install.js');
  const { parseValidity } = await import('../../clouds/aws/rolesanywhere/renewal/schedule.js');
  const { createDirectProvider } = await import('../../providers/create-providers.js');

  const current = new CertificateSource(p.certificate, p.chain).current();
  const oldKey = createPrivateKey(readSecretFile(p.private_key, 'private key file', 'point private_key at the key'));
  const fresh = newKeyLike(oldKey);
  const freshPem = fresh.export({ type: 'pkcs8', format: 'pem' }) as string;
  // The CSR is signed by the new key, which lives only in memory until the certificate for it is checked.
  const tmpKey = {
    algorithm: fresh.asymmetricKeyType === 'rsa' ? ('AWS4-X509-RSA-SHA256' as const) : ('AWS4-X509-ECDSA-SHA256' as const),
    describe: () => `a new key for ${p.private_key}`,
    publicKeySpki: () => new Uint8Array(spkiDer(fresh)),
    async sign(data: Uint8Array) {
      const { sign, constants } = await import('node:crypto');
      return new Uint8Array(
        fresh.asymmetricKeyType === 'rsa'
          ? sign('sha256', data, { key: fresh, padding: constants.RSA_PKCS1_PADDING })
          : sign('sha256', data, { key: fresh, dsaEncoding: 'der' }),
      );
    },
  };
  // aws-private-ca signs with the profile's credentials, got with the current certificate and key.
  const credentials = async () => {
    const d = await createDirectProvider(name, cfg, signer, env);
    try {
      return (await d.provider.fetch()) as AwsCredentials;
    } finally {
      d.destroy();
    }
  };
  const issuer = issuerFor(p.renewal, credentials);
  const csrPem = (await createCsr(tmpKey, { subject: current.leaf.subject })).pem;
  const now = Date.now();
  const lifetime = current.leaf.notAfter.getTime() - current.leaf.notBefore.getTime();
  const validityMs = (p.renewal.validity !== undefined ? parseValidity(p.renewal.validity) : undefined) ?? lifetime;
  const pem = await issuer.issue({ csrPem, now, validityMs });
  const renewed = checkRenewedChain(pem, {
    spki: tmpKey.publicKeySpki(),
    anchors: readTrustAnchor(trustAnchorPath(p.renewal)),
    now: Date.now(),
    from: issuer.source,
  });
  // Key first, then certificate: between the two renames a request signs with the new key and the
  // old certificate and fails once; the other order would leave the old key with a certificate that
  // is not its own if the second write failed.
  writeFileAtomic(p.private_key, freshPem, 0o600);
  await fileInstaller(p.certificate, p.chain)(renewed);
  fromKeyFile(p.private_key); // reads back what was written: a broken write shows here, not at the next request
  return `serial ${renewed.description.serialDecimal}, valid to ${renewed.description.notAfter.toISOString()}, new key in ${p.private_key}`;
}

function spkiDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' }) as Buffer;
}

export const certRenewCommand: Command = {
  name: 'cert renew',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('cert renew', argv, {
      profile: { type: 'string' },
      now: { type: 'boolean' },
      'new-key': { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const { cfg, signer } = await openConfiguredSigner(values.config, io);
    const targets: Array<[string, AwsRolesAnywhereProfileConfig]> = [];
    for (const [name, p] of cfg.profiles) {
      if (values.profile !== undefined && name !== values.profile) continue;
      if (p.type !== 'aws-rolesanywhere') continue;
      const ra = p as AwsRolesAnywhereProfileConfig;
      if (ra.renewal === undefined && values.profile === undefined) continue;
      targets.push([name, ra]);
    }
    if (values.profile !== undefined && targets.length === 0) {
      await signer.close();
      throw new CliError(`no aws-rolesanywhere profile named ${values.profile}`, EXIT.usage, "see 'credport profiles'");
    }
    if (targets.length === 0) {
      await signer.close();
      throw new CliError('no aws-rolesanywhere profile has a [profiles.NAME.renewal] table', EXIT.usage, 'see docs/rolesanywhere.md');
    }
    let failed = false;
    try {
      const { createDirectProvider } = await import('../../providers/create-providers.js');
      for (const [name, p] of targets) {
        if (p.renewal === undefined) {
          io.stderr(`profile ${name}: no [profiles.${name}.renewal] table; nothing to renew with\n`);
          failed = true;
          continue;
        }
        try {
          if (values['new-key']) {
            io.stdout(`profile ${name}: renewed with a new key: ${await renewWithNewKey(name, p, cfg, signer, io.env)}\n`);
            continue;
          }
          const direct = await createDirectProvider(name, cfg, signer, io.env, {}, { clock: systemClock });
          try {
            const renewer = (
              direct.provider as { renewer?: import('../../clouds/aws/rolesanywhere/renewal/renewer.js').CertificateRenewer }
            ).renewer;
            if (renewer === undefined) throw new Error('renewal is not available for this profile');
            await renewer.idle();
            const r = await renewer.renew({ force: values.now === true });
            io.stdout(
              r.renewed
                ? `profile ${name}: renewed (${renewer.method}): serial ${r.serial}, valid to ${r.notAfter?.toISOString()}\n`
                : `profile ${name}: ${r.reason}; use --now to renew anyway\n`,
            );
          } finally {
            direct.destroy();
          }
        } catch (err) {
          if (err instanceof CliError) throw err;
          failed = true;
          const code = (err as { code?: string }).code;
          io.stderr(
            `profile ${name}: renewal failed${code ? ` (${code})` : ''}: ${(err as Error).message}; the current certificate is unchanged\n`,
          );
        }
      }
    } finally {
      await signer.close();
    }
    return failed ? EXIT.failure : EXIT.ok;
  },
};
