/** `credport ca init | issue`: a small local CA for teams with no PKI, whose certificate becomes the trust anchor. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CaError, initCa, issueCertificate } from '../../x509/ca.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';

const INIT_HELP = `Usage: credport ca init --dir DIR [options]

Creates a CA key (mode 0600, in a 0700 directory) and a self-signed CA
certificate (CA:true, pathlen 0, keyCertSign+cRLSign). Register DIR/ca.pem as
an IAM Roles Anywhere trust anchor (source: external certificate bundle).
Existing files are never overwritten.

Options:
  --dir DIR          where ca.key and ca.pem go
  --subject DN       default "CN=credport device CA"
  --days N           validity (default 3650)
  --key-type TYPE    ec-p256 (default), rsa-2048 or rsa-3072
  -h, --help         show this help`;

const ISSUE_HELP = `Usage: credport ca issue --dir DIR --csr FILE [options]

Verifies a CSR's signature and issues a device certificate from it
(CA:false, digitalSignature, clientAuth, a random 128-bit serial).

Options:
  --dir DIR          the CA directory ('credport ca init')
  --csr FILE         the request ('credport cert csr')
  --days N           validity (default 365)
  --out FILE         write the certificate here (never overwritten) instead of stdout
  -h, --help         show this help`;

function days(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 36500) throw new CliError('--days: expected a whole number of days from 1 to 36500', EXIT.usage);
  return n;
}

export const caInitCommand: Command = {
  name: 'ca init',
  help: INIT_HELP,
  async run(argv, io) {
    const { values } = parseFlags('ca init', argv, {
      dir: { type: 'string' },
      subject: { type: 'string' },
      days: { type: 'string' },
      'key-type': { type: 'string' },
    });
    if (values.help) {
      io.stdout(`${INIT_HELP}\n`);
      return EXIT.ok;
    }
    if (!values.dir) throw new CliError('--dir is required', EXIT.usage, "see 'credport ca init --help'");
    const keyType = values['key-type'] ?? 'ec-p256';
    if (!['ec-p256', 'rsa-2048', 'rsa-3072'].includes(keyType))
      throw new CliError('--key-type: expected ec-p256, rsa-2048 or rsa-3072', EXIT.usage);
    try {
      const r = await initCa({
        dir: resolve(values.dir),
        subject: values.subject ?? 'CN=credport device CA',
        days: days(values.days, 3650),
        keyType: keyType as 'ec-p256',
      });
      io.stdout(
        `CA key:         ${r.keyPath} (0600)\nCA certificate: ${r.certPath}\nsubject:        ${r.subject}\nexpires:        ${r.notAfter.toISOString()}\n\nRegister ${r.certPath} as the trust anchor (docs/rolesanywhere.md).\n`,
      );
    } catch (err) {
      if (err instanceof CaError) throw new CliError(err.message, EXIT.failure);
      throw err;
    }
    return EXIT.ok;
  },
};

export const caIssueCommand: Command = {
  name: 'ca issue',
  help: ISSUE_HELP,
  async run(argv, io) {
    const { values } = parseFlags('ca issue', argv, {
      dir: { type: 'string' },
      csr: { type: 'string' },
      days: { type: 'string' },
      out: { type: 'string' },
    });
    if (values.help) {
      io.stdout(`${ISSUE_HELP}\n`);
      return EXIT.ok;
    }
    if (!values.dir || !values.csr) throw new CliError('--dir and --csr are required', EXIT.usage, "see 'credport ca issue --help'");
    let csrPem: string;
    try {
      csrPem = readFileSync(values.csr, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${values.csr}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
    }
    try {
      const r = await issueCertificate({
        caDir: resolve(values.dir),
        csrPem,
        days: days(values.days, 365),
        ...(values.out ? { outPath: resolve(values.out) } : {}),
      });
      if (r.path) io.stderr(`issued ${r.subject}, serial ${r.serialDecimal}, valid to ${r.notAfter.toISOString()}: ${r.path}\n`);
      else io.stdout(r.certificatePem);
    } catch (err) {
      if (err instanceof CaError) throw new CliError(err.message, EXIT.failure);
      throw err;
    }
    return EXIT.ok;
  },
};

const REVOKE_HELP = `Usage: credport ca revoke --dir DIR SERIAL|CERT

Records a certificate of this CA as revoked (DIR/revoked.json), by serial
number (decimal as Roles Anywhere and CloudTrail show it, 0x-hex, or aa:bb:..
hex) or by its PEM file. Then run 'credport ca crl' and import the CRL into
the trust anchor (docs/rolesanywhere.md): revocation takes effect there.

Options:
  --dir DIR          the CA directory ('credport ca init')
  -h, --help         show this help`;

const CRL_HELP = `Usage: credport ca crl --dir DIR [options]

Issues the CA's next certificate revocation list: every revoked serial,
signed by the CA key, with nextUpdate and a CRL number one higher than the
last. Written to DIR/crl.pem; --out also writes it elsewhere (PEM, or DER
with --der, which is what 'aws rolesanywhere import-crl --crl-data' takes).

Options:
  --dir DIR          the CA directory ('credport ca init')
  --days N           nextUpdate this many days ahead (default 7)
  --out FILE         also write the CRL here (replaced atomically)
  --der              write --out as DER instead of PEM
  -h, --help         show this help`;

export const caRevokeCommand: Command = {
  name: 'ca revoke',
  help: REVOKE_HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags('ca revoke', argv, { dir: { type: 'string' } }, 1);
    if (values.help) {
      io.stdout(`${REVOKE_HELP}\n`);
      return EXIT.ok;
    }
    const target = positionals[0];
    if (!values.dir || target === undefined)
      throw new CliError('--dir and SERIAL|CERT are required', EXIT.usage, "see 'credport ca revoke --help'");
    const { revokeCertificate } = await import('../../x509/crl.js');
    try {
      const r = revokeCertificate(resolve(values.dir), target);
      io.stdout(
        r.alreadyRevoked
          ? `serial ${r.serialDecimal} was already revoked\n`
          : `revoked serial ${r.serialDecimal} (hex ${r.serialHex}); now run 'credport ca crl --dir ${values.dir}' and import the CRL\n`,
      );
    } catch (err) {
      if (err instanceof CaError) throw new CliError(err.message, EXIT.failure);
      throw err;
    }
    return EXIT.ok;
  },
};

export const caCrlCommand: Command = {
  name: 'ca crl',
  help: CRL_HELP,
  async run(argv, io) {
    const { values } = parseFlags('ca crl', argv, {
      dir: { type: 'string' },
      days: { type: 'string' },
      out: { type: 'string' },
      der: { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${CRL_HELP}\n`);
      return EXIT.ok;
    }
    if (!values.dir) throw new CliError('--dir is required', EXIT.usage, "see 'credport ca crl --help'");
    const d = values.days === undefined ? 7 : Number(values.days);
    if (!Number.isInteger(d) || d < 1 || d > 366) throw new CliError('--days: expected a whole number of days from 1 to 366', EXIT.usage);
    if (values.der && !values.out) throw new CliError('--der needs --out', EXIT.usage);
    const { issueCrl } = await import('../../x509/crl.js');
    const { writeFileAtomic } = await import('../../util/secure-file.js');
    try {
      const r = await issueCrl(resolve(values.dir), { days: d });
      if (values.out) writeFileAtomic(resolve(values.out), values.der ? r.der : `${r.pem}\n`, 0o644);
      io.stdout(
        `CRL number ${r.crlNumber}: ${r.revoked} revoked, this update ${r.thisUpdate.toISOString()}, next update ${r.nextUpdate.toISOString()}\nwritten to ${r.path}${values.out ? ` and ${resolve(values.out)}` : ''}\n`,
      );
    } catch (err) {
      if (err instanceof CaError) throw new CliError(err.message, EXIT.failure);
      throw err;
    }
    return EXIT.ok;
  },
};
