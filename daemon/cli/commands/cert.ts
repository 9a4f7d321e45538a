/** `credport cert csr | import | show`: the device key's X.509 certificate, for IAM Roles Anywhere. */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import type { AwsRolesAnywhereProfileConfig } from '../../clouds/aws/schema.js';
import { join, resolve } from 'node:path';
import { xdgStateHome } from '../../config/paths.js';
import { writeFileAtomic } from '../../util/secure-file.js';
import { createCsr } from '../../x509/csr.js';
import { checkChain, describeCertificate, type CertificateDescription } from '../../x509/inspect.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import type { CliIo } from '../io.js';
import { openConfiguredSigner } from '../shared.js';

const CSR_HELP = `Usage: credport cert csr [options]

Writes a PKCS#10 certificate signing request for the device key, signed by
that key in whatever backend holds it: a hardware key gets a certificate
without ever leaving the hardware. Give it to your CA (or 'credport ca issue').

Options:
  --subject DN       e.g. "CN=edge-17, O=Example" (default CN=credport device <kid prefix>)
  --out FILE         write the PEM here (never overwritten) instead of stdout
  -c, --config PATH  config file
  -h, --help         show this help`;

const IMPORT_HELP = `Usage: credport cert import CERT [options]

Checks a certificate (and its chain) against the device key and installs them
where a Roles Anywhere profile can use them. Refuses a certificate that does
not certify the device key, is outside its validity dates, lacks the
digitalSignature key usage, or whose chain is out of order.

Options:
  --chain FILE       intermediate CA certificates, leaf excluded, in order
  --dest DIR         where to install device.pem / intermediates.pem
                     (default $XDG_STATE_HOME/credport)
  -c, --config PATH  config file
  -h, --help         show this help`;

const SHOW_HELP = `Usage: credport cert show [CERT] [options]

Describes a certificate: subject, issuer, serial (decimal, as Roles Anywhere
and CloudTrail show it), validity, key usage, whether it certifies the device
key, and whether the chain is in order. Without CERT: the certificate of
every aws-rolesanywhere profile in the config.

Options:
  --chain FILE       check this chain too
  -c, --config PATH  config file
  -h, --help         show this help`;

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
  }
}

async function deviceJwk(configFlag: string | undefined, io: CliIo) {
  const { cfg, signer } = await openConfiguredSigner(configFlag, io);
  const jwk = signer.publicJwk();
  await signer.close();
  return { cfg, jwk };
}

/** Problems that make a certificate unusable as the device's identity now. */
function certificateProblems(d: CertificateDescription, now: Date): string[] {
  const out: string[] = [];
  if (d.matchesKey === false) out.push('it does not certify the device key (another key pair)');
  if (d.notBefore > now) out.push(`it is not valid before ${d.notBefore.toISOString()}`);
  if (d.notAfter < now) out.push(`it expired on ${d.notAfter.toISOString()}`);
  if (d.keyUsage.length > 0 && !d.keyUsage.includes('digitalSignature')) out.push('its key usage lacks digitalSignature');
  if (d.isCa) out.push('it is a CA certificate, not a device certificate');
  return out;
}

function render(d: CertificateDescription, title: string): string {
  const days = Math.floor((d.notAfter.getTime() - Date.now()) / 86_400_000);
  return [
    title,
    `  subject:    ${d.subject}`,
    `  issuer:     ${d.issuer}${d.selfSigned ? ' (self-signed)' : ''}`,
    `  serial:     ${d.serialDecimal} (hex ${d.serialHex})`,
    `  valid:      ${d.notBefore.toISOString()} to ${d.notAfter.toISOString()} (${days >= 0 ? `${days} days left` : `expired ${-days} days ago`})`,
    `  key:        ${d.keyType}${d.matchesKey === undefined ? '' : d.matchesKey ? ', the device key' : ', NOT the device key'}`,
    `  key usage:  ${d.keyUsage.join(', ') || '(none)'}${d.extendedKeyUsage.length ? `; extended: ${d.extendedKeyUsage.join(', ')}` : ''}`,
    `  sha256:     ${d.fingerprintSha256}`,
  ].join('\n');
}

export const certCsrCommand: Command = {
  name: 'cert csr',
  help: CSR_HELP,
  async run(argv, io) {
    const { values } = parseFlags('cert csr', argv, { subject: { type: 'string' }, out: { type: 'string' } });
    if (values.help) {
      io.stdout(`${CSR_HELP}\n`);
      return EXIT.ok;
    }
    const { signer } = await openConfiguredSigner(values.config, io);
    try {
      let csr;
      try {
        csr = await createCsr(signer, values.subject !== undefined ? { subject: values.subject } : {});
      } catch (err) {
        throw new CliError(`--subject: ${(err as Error).message}`, EXIT.usage);
      }
      if (values.out !== undefined) {
        const out = resolve(values.out);
        if (existsSync(out)) throw new CliError(`${out} already exists; credport does not overwrite it`, EXIT.usage);
        writeFileAtomic(out, csr.pem, 0o644);
        io.stderr(`wrote ${out} (subject ${csr.subject})\n`);
      } else {
        io.stdout(csr.pem);
      }
    } finally {
      await signer.close();
    }
    return EXIT.ok;
  },
};

export const certImportCommand: Command = {
  name: 'cert import',
  help: IMPORT_HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags('cert import', argv, { chain: { type: 'string' }, dest: { type: 'string' } }, 1);
    if (values.help) {
      io.stdout(`${IMPORT_HELP}\n`);
      return EXIT.ok;
    }
    const certPath = positionals[0];
    if (!certPath) throw new CliError('missing CERT', EXIT.usage, "see 'credport cert import --help'");
    const pem = readPem(certPath, 'certificate');
    const chainPem = values.chain !== undefined ? readPem(values.chain, 'chain') : undefined;
    const { jwk } = await deviceJwk(values.config, io);
    let d: CertificateDescription;
    try {
      d = describeCertificate(pem, { jwk: { ...jwk } });
    } catch (err) {
      throw new CliError(`${certPath} is not a PEM certificate: ${(err as Error).message}`, EXIT.usage);
    }
    const problems = certificateProblems(d, new Date());
    if (chainPem !== undefined) problems.push(...checkChain(pem, chainPem).problems.map((p) => `chain: ${p}`));
    if (problems.length > 0) throw new CliError(`refusing ${certPath}: ${problems.join('; ')}`, EXIT.failure);
    const dest = resolve(values.dest ?? join(xdgStateHome(io.env), 'credport'));
    const certOut = join(dest, 'device.pem');
    writeFileAtomic(certOut, pem, 0o644);
    let chainOut: string | undefined;
    if (values.chain !== undefined) {
      chainOut = join(dest, 'intermediates.pem');
      copyFileSync(values.chain, chainOut);
    }
    io.stdout(
      `${render(d, `installed ${certOut}${chainOut ? ` and ${chainOut}` : ''}`)}\n\nIn the config:\n\n[profiles.NAME]\ntype = "aws-rolesanywhere"\ncertificate = "${certOut}"\n${chainOut ? `chain = "${chainOut}"\n` : ''}trust_anchor_arn = "arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/..."\nprofile_arn = "arn:aws:rolesanywhere:REGION:ACCOUNT:profile/..."\nrole_arn = "arn:aws:iam::ACCOUNT:role/..."\n`,
    );
    return EXIT.ok;
  },
};

export const certShowCommand: Command = {
  name: 'cert show',
  help: SHOW_HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags('cert show', argv, { chain: { type: 'string' } }, 1);
    if (values.help) {
      io.stdout(`${SHOW_HELP}\n`);
      return EXIT.ok;
    }
    const { cfg, signer } = await openConfiguredSigner(values.config, io);
    const jwk = signer.publicJwk();
    const targets: Array<{ title: string; cert: string; chain?: string }> = [];
    if (positionals[0] !== undefined)
      targets.push({ title: positionals[0], cert: positionals[0], ...(values.chain ? { chain: values.chain } : {}) });
    else {
      for (const [name, p] of cfg.profiles) {
        if (p.type !== 'aws-rolesanywhere') continue;
        const ra = p as AwsRolesAnywhereProfileConfig;
        targets.push({ title: `profile ${name}: ${ra.certificate}`, cert: ra.certificate, ...(ra.chain ? { chain: ra.chain } : {}) });
      }
    }
    if (targets.length === 0) {
      await signer.close();
      throw new CliError(
        'no certificate given and no aws-rolesanywhere profile in the config',
        EXIT.usage,
        "see 'credport cert show --help'",
      );
    }
    let bad = false;
    try {
      for (const target of targets) {
        let cert: string | Uint8Array;
        if (target.cert === 'token' && positionals[0] === undefined) {
          // certificate = "token": the certificate stored next to the key on the PKCS#11 token.
          const ders = (await signer.readCertificates?.()) ?? [];
          if (ders[0] === undefined)
            throw new CliError(`no certificate on the token next to the key (${signer.describe().location})`, EXIT.failure);
          cert = ders[0];
        } else {
          cert = readPem(target.cert, 'certificate');
        }
        const d = describeCertificate(cert, { jwk: { ...jwk } });
        const problems = certificateProblems(d, new Date());
        if (target.chain) problems.push(...checkChain(cert, readPem(target.chain, 'chain')).problems.map((p) => `chain: ${p}`));
        bad ||= problems.length > 0;
        io.stdout(`${render(d, target.title)}\n${problems.map((p) => `  PROBLEM:    ${p}\n`).join('')}\n`);
      }
    } finally {
      await signer.close();
    }
    return bad ? EXIT.failure : EXIT.ok;
  },
};
