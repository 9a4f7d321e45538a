/** `credport doctor`: every check a support engineer would ask for, each with its fix. */
import { execFile } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import type { ResolvedConfig } from '../../config/load.js';
import { keyLocation, openSigner } from '../../keys/open-signer.js';
import type { HealthReport } from '../../server/health-report.js';
import { readTokenFile } from '../../server/token.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import type { CliIo } from '../io.js';
import { askDaemon, clientBaseUrl, expectedDaemonUid, loadCliConfig } from '../shared.js';

const HELP = `Usage: credport doctor [options]

Checks the config, the key (with a test signature), the token file, the
daemon, the clock against AWS, the current shell's AWS variables and the
AWS clients it can find. Prints each check with a fix; exit 1 if any failed.

Options:
  --json             print the checks as JSON
  -c, --config PATH  config file
  -h, --help         show this help`;

export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

function version(cmd: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000, encoding: 'utf8' }, (err, stdout, stderr) => resolve(err ? undefined : `${stdout}${stderr}`.trim().split('\n')[0]));
  });
}

async function keyCheck(cfg: ResolvedConfig): Promise<Check> {
  try {
    const signer = await openSigner(cfg.key);
    try {
      const data = Buffer.from(`credport doctor ${Date.now()}`);
      const sig = await signer.sign(data);
      const ok = verify('sha256', data, { key: createPublicKey({ key: { ...signer.publicJwk() }, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, sig);
      const d = signer.describe();
      return ok
        ? { name: 'key', status: 'ok', detail: `${d.backend}: ${d.location}; test signature verified (kid ${signer.thumbprint.slice(0, 12)}…)` }
        : { name: 'key', status: 'fail', detail: 'the test signature did not verify against the public key', fix: 'the backend returned a bad signature; check the token or module' };
    } finally {
      await signer.close();
    }
  } catch (err) {
    return { name: 'key', status: 'fail', detail: `${keyLocation(cfg.key)}: ${(err as Error).message}`, fix: "create it with 'credport init', or fix the [key] table" };
  }
}

function tokenCheck(cfg: ResolvedConfig): Check {
  try {
    readTokenFile(cfg.daemon.tokenFile);
    return { name: 'token file', status: 'ok', detail: `${cfg.daemon.tokenFile}: 0600, ≥ 256 bits, no newline` };
  } catch (err) {
    const missing = (err as Error).name === 'SecretFileNotFoundError';
    return { name: 'token file', status: missing ? 'warn' : 'fail', detail: (err as Error).message, fix: missing ? "it is created when 'credport serve' starts" : 'fix the mode or remove the file and restart the daemon' };
  }
}

async function daemonCheck(cfg: ResolvedConfig): Promise<{ check: Check; health?: HealthReport }> {
  const base = clientBaseUrl(cfg.daemon.listen);
  let r;
  try {
    r = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
  } catch (err) {
    // Someone other than the daemon's user holds the port.
    if (err instanceof CliError) return { check: { name: 'daemon', status: 'fail', detail: err.message, fix: 'stop that process, then start credport' } };
    throw err;
  }
  if (!r.reachable) return { check: { name: 'daemon', status: 'fail', detail: `not listening at ${base} (${r.reason})`, fix: "credport serve, or credport service install" } };
  const h = r.body as HealthReport;
  if (typeof h !== 'object' || h === null || !('profiles' in h)) return { check: { name: 'daemon', status: 'fail', detail: `${base} answers, but not as credport (HTTP ${r.status})`, fix: 'another program holds the port; change [daemon] listen' } };
  const bad = Object.entries(h.profiles).filter(([, p]) => p.state === 'unavailable' || p.state === 'failing');
  return {
    health: h,
    check: bad.length
      ? { name: 'daemon', status: h.status === 'ok' ? 'warn' : 'fail', detail: `${base}: ${bad.map(([n, p]) => `${n} ${p.state}${p.lastError ? ` (${p.lastError.code}: ${p.lastError.message})` : ''}`).join('; ')}`, fix: 'see the error; credport logs shows more' }
      : { name: 'daemon', status: 'ok', detail: `${base}: ${h.status}, ${Object.keys(h.profiles).length} profile(s), version ${h.version}` },
  };
}

async function clockCheck(cfg: ResolvedConfig): Promise<Check> {
  const profile = cfg.profiles.get(cfg.defaultProfile);
  const region = profile && 'region' in profile ? profile.region : 'us-east-1';
  const endpoint = (profile && 'sts_endpoint' in profile ? profile.sts_endpoint : undefined) ?? `https://sts.${region}.amazonaws.com`;
  try {
    const before = Date.now();
    const res = await fetch(endpoint, { method: 'GET', signal: AbortSignal.timeout(5000) });
    const after = Date.now();
    const date = res.headers.get('date');
    if (!date) return { name: 'clock', status: 'warn', detail: `${endpoint} sent no Date header` };
    // Date has one-second resolution; compare against the middle of the round trip.
    const skew = Math.round((new Date(date).getTime() - (before + after) / 2) / 1000);
    return Math.abs(skew) > 60
      ? { name: 'clock', status: 'fail', detail: `this clock is ${Math.abs(skew)} s ${skew > 0 ? 'behind' : 'ahead of'} ${endpoint}`, fix: 'enable time sync (timedatectl set-ntp true / System Settings > Date & Time)' }
      : { name: 'clock', status: 'ok', detail: `within ${Math.max(1, Math.abs(skew))} s of ${endpoint}` };
  } catch (err) {
    return { name: 'clock', status: 'warn', detail: `could not reach ${endpoint} (${(err as Error).message})`, fix: 'check network access to STS' };
  }
}

function envCheck(cfg: ResolvedConfig, io: CliIo): Check[] {
  const e = io.env;
  const out: Check[] = [];
  if (e.AWS_ACCESS_KEY_ID) out.push({ name: 'shell', status: 'warn', detail: 'AWS_ACCESS_KEY_ID is set: SDKs use it before credport', fix: 'unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN' });
  if (e.AWS_PROFILE) out.push({ name: 'shell', status: 'warn', detail: `AWS_PROFILE=${e.AWS_PROFILE}: SDKs read that profile from ~/.aws before the container endpoint`, fix: 'unset AWS_PROFILE, or give that profile credential_process = credport auth' });
  const uri = e.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  const base = clientBaseUrl(cfg.daemon.listen);
  if (!uri && !e.AWS_EC2_METADATA_SERVICE_ENDPOINT) {
    out.push({ name: 'shell', status: 'warn', detail: 'this shell does not point SDKs at credport', fix: 'eval "$(credport env)"' });
  } else if (uri && !uri.startsWith(`${base}/v1/credentials`)) {
    out.push({ name: 'shell', status: 'warn', detail: `AWS_CONTAINER_CREDENTIALS_FULL_URI=${uri} is not this daemon (${base})`, fix: 'eval "$(credport env)"' });
  } else if (uri && !e.AWS_CONTAINER_AUTHORIZATION_TOKEN && !e.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) {
    out.push({ name: 'shell', status: 'fail', detail: 'the container URI is set without a token variable: every request will be refused', fix: 'eval "$(credport env)"' });
  } else {
    out.push({ name: 'shell', status: 'ok', detail: `SDKs are pointed at ${uri ?? e.AWS_EC2_METADATA_SERVICE_ENDPOINT}` });
  }
  return out;
}

/** Certificate expiry for every Roles Anywhere profile: from the daemon when it runs, else from the files. */
async function certificateChecks(cfg: ResolvedConfig, health: HealthReport | undefined): Promise<Check[]> {
  const out: Check[] = [];
  const days = cfg.daemon.certificate_warning_days;
  for (const [name, p] of cfg.profiles) {
    if (p.type !== 'aws-rolesanywhere') continue;
    let notAfter: Date | undefined;
    let subject = '';
    const fromDaemon = health?.profiles[name]?.certificate;
    if (fromDaemon) {
      notAfter = new Date(fromDaemon.notAfter);
      subject = fromDaemon.subject;
    } else if (p.certificate !== 'token') {
      try {
        const { describeCertificate } = await import('../../x509/inspect.js');
        const { readFileSync } = await import('node:fs');
        const d = describeCertificate(readFileSync(p.certificate, 'utf8'));
        notAfter = d.notAfter;
        subject = d.subject;
      } catch (err) {
        out.push({ name: 'certificate', status: 'fail', detail: `profile ${name}: ${p.certificate}: ${(err as Error).message}`, fix: "install one with 'credport cert import'" });
        continue;
      }
    }
    if (!notAfter) {
      out.push({ name: 'certificate', status: 'warn', detail: `profile ${name}: the certificate is on the token; start the daemon to see its expiry` });
      continue;
    }
    const left = Math.floor((notAfter.getTime() - Date.now()) / 86_400_000);
    out.push(
      left < 0
        ? { name: 'certificate', status: 'fail', detail: `profile ${name}: ${subject} expired on ${notAfter.toISOString().slice(0, 10)}`, fix: 'credport cert csr, have it signed, credport cert import' }
        : left < days
          ? { name: 'certificate', status: 'warn', detail: `profile ${name}: ${subject} expires in ${left} day(s)`, fix: 'renew it now: credport cert csr, then cert import' }
          : { name: 'certificate', status: 'ok', detail: `profile ${name}: ${subject}, ${left} days left` },
    );
  }
  return out;
}

async function clientChecks(): Promise<Check[]> {
  const out: Check[] = [];
  const aws = await version('aws', ['--version']);
  out.push(aws ? { name: 'aws cli', status: 'ok', detail: aws } : { name: 'aws cli', status: 'warn', detail: 'not found on PATH' });
  // Ask botocore itself whether it reads the token file, rather than guessing from its version.
  const boto = await version('python3', [
    '-c',
    'import botocore, inspect, botocore.credentials as c; print("botocore", botocore.__version__, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" in inspect.getsource(c))',
  ]);
  if (boto) {
    const [, ver, tf] = boto.split(' ');
    const tokenFile = tf === 'True';
    out.push({
      name: 'python',
      status: tokenFile ? 'ok' : 'warn',
      detail: `botocore ${ver ?? '?'}${tokenFile ? ' (reads the token file)' : ': does not read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'}`,
      ...(tokenFile ? {} : { fix: 'eval "$(credport env --inline-token)" for this client' }),
    });
  }
  return out;
}

export const doctorCommand: Command = {
  name: 'doctor',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('doctor', argv, { json: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    let cfg: ResolvedConfig;
    const checks: Check[] = [];
    try {
      cfg = loadCliConfig(values.config, io);
      checks.push({ name: 'config', status: 'ok', detail: `${cfg.file}: valid, ${cfg.profiles.size} profile(s)` });
    } catch (err) {
      checks.push({ name: 'config', status: 'fail', detail: (err as Error).message, fix: "credport init, or fix the file (docs/config-reference.md)" });
      io.stdout(values.json ? `${JSON.stringify(checks, null, 2)}\n` : render(checks));
      return EXIT.failure;
    }
    const [key, daemon, clock, clients] = await Promise.all([keyCheck(cfg), daemonCheck(cfg), clockCheck(cfg), clientChecks()]);
    checks.push(key, tokenCheck(cfg), daemon.check, clock, ...(await certificateChecks(cfg, daemon.health)), ...envCheck(cfg, io), ...clients);
    io.stdout(values.json ? `${JSON.stringify(checks, null, 2)}\n` : render(checks));
    return checks.some((c) => c.status === 'fail') ? EXIT.failure : EXIT.ok;
  },
};

function render(checks: Check[]): string {
  const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  return `${checks.map((c) => `[${mark[c.status]}] ${c.name.padEnd(10)} ${c.detail}${c.fix ? `\n${' '.repeat(18)}fix: ${c.fix}` : ''}`).join('\n')}\n`;
}
