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
