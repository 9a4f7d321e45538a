/** `credport doctor`: every check a support engineer would ask for, each with its fix. */
import { createPublicKey, verify } from 'node:crypto';
import type { ResolvedConfig } from '../../config/load.js';
import { keyLocation, openSigner } from '../../keys/open-signer.js';
import type { HealthReport } from '../../server/health-report.js';
import { readTokenFile } from '../../server/token-file.js';
import { parseFlags } from '../args.js';
import { cliContext } from '../daemon-locator.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { CLOUDS } from '../../clouds/registry.js';
import { profileType } from '../../clouds/specs.js';
import type { Check } from '../../clouds/types.js';
import { askDaemon, clientBaseUrl, expectedDaemonUid, loadCliConfig } from '../shared.js';

const HELP = `Usage: credport doctor [options]

Checks the config, the key (with a test signature), the token file, the
daemon, the clock against AWS, the current shell's AWS variables and the
AWS clients it can find. Prints each check with a fix; exit 1 if any failed.

Options:
  --json             print the checks as JSON
  -c, --config PATH  config file
  -h, --help         show this help`;

export type { Check } from '../../clouds/types.js';

async function keyCheck(cfg: ResolvedConfig): Promise<Check> {
  try {
    const signer = await openSigner(cfg.key);
    try {
      const data = Buffer.from(`credport doctor ${Date.now()}`);
      const sig = await signer.sign(data);
      const ok = verify(
        'sha256',
        data,
        { key: createPublicKey({ key: { ...signer.publicJwk() }, format: 'jwk' }), dsaEncoding: 'ieee-p1363' },
        sig,
      );
      const d = signer.describe();
      return ok
        ? {
            name: 'key',
            status: 'ok',
            detail: `${d.backend}: ${d.location}; test signature verified (kid ${signer.thumbprint.slice(0, 12)}…)`,
          }
        : {
            name: 'key',
            status: 'fail',
            detail: 'the test signature did not verify against the public key',
            fix: 'the backend returned a bad signature; check the token or module',
          };
    } finally {
      await signer.close();
    }
  } catch (err) {
    return {
      name: 'key',
      status: 'fail',
      detail: `${keyLocation(cfg.key)}: ${(err as Error).message}`,
      fix: "create it with 'credport init', or fix the [key] table",
    };
  }
}

function tokenCheck(cfg: ResolvedConfig): Check {
  try {
    readTokenFile(cfg.daemon.tokenFile);
    return { name: 'token file', status: 'ok', detail: `${cfg.daemon.tokenFile}: 0600, ≥ 256 bits, no newline` };
  } catch (err) {
    const missing = (err as Error).name === 'SecretFileNotFoundError';
    return {
      name: 'token file',
      status: missing ? 'warn' : 'fail',
      detail: (err as Error).message,
      fix: missing ? "it is created when 'credport serve' starts" : 'fix the mode or remove the file and restart the daemon',
    };
  }
}

async function daemonCheck(cfg: ResolvedConfig): Promise<{ check: Check; health?: HealthReport }> {
  const base = clientBaseUrl(cfg.daemon.listen);
  let r;
  try {
    r = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
  } catch (err) {
    // Someone other than the daemon's user holds the port.
    if (err instanceof CliError)
      return { check: { name: 'daemon', status: 'fail', detail: err.message, fix: 'stop that process, then start credport' } };
    throw err;
  }
  if (!r.reachable)
    return {
      check: {
        name: 'daemon',
        status: 'fail',
        detail: `not listening at ${base} (${r.reason})`,
        fix: 'credport serve, or credport service install',
      },
    };
  const h = r.body as HealthReport;
  if (typeof h !== 'object' || h === null || !('profiles' in h))
    return {
      check: {
        name: 'daemon',
        status: 'fail',
        detail: `${base} answers, but not as credport (HTTP ${r.status})`,
        fix: 'another program holds the port; change [daemon] listen',
      },
    };
  const bad = Object.entries(h.profiles).filter(([, p]) => p.state === 'unavailable' || p.state === 'failing');
  return {
    health: h,
    check: bad.length
      ? {
          name: 'daemon',
          status: h.status === 'ok' ? 'warn' : 'fail',
          detail: `${base}: ${bad.map(([n, p]) => `${n} ${p.state}${p.lastError ? ` (${p.lastError.code}: ${p.lastError.message})` : ''}`).join('; ')}`,
          fix: 'see the error; credport logs shows more',
        }
      : {
          name: 'daemon',
          status: 'ok',
          detail: `${base}: ${h.status}, ${Object.keys(h.profiles).length} profile(s), version ${h.version}`,
        },
  };
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
      checks.push({
        name: 'config',
        status: 'fail',
        detail: (err as Error).message,
        fix: 'credport init, or fix the file (docs/config-reference.md)',
      });
      io.stdout(values.json ? `${JSON.stringify(checks, null, 2)}\n` : render(checks));
      return EXIT.failure;
    }
    const used = CLOUDS.filter((c) => [...cfg.profiles.values()].some((p) => profileType(p.type)?.cloud.name === c.name));
    const clis = await Promise.all(used.map((c) => c.cli()));
    const [key, daemon] = await Promise.all([keyCheck(cfg), daemonCheck(cfg)]);
    const ctx = cliContext(cfg, io.env);
    const perCloud = await Promise.all(clis.map((cli) => cli.doctor?.(ctx, daemon.health) ?? Promise.resolve([])));
    checks.push(key, tokenCheck(cfg), daemon.check, ...perCloud.flat());
    io.stdout(values.json ? `${JSON.stringify(checks, null, 2)}\n` : render(checks));
    return checks.some((c) => c.status === 'fail') ? EXIT.failure : EXIT.ok;
  },
};

function render(checks: Check[]): string {
  const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  return `${checks.map((c) => `[${mark[c.status]}] ${c.name.padEnd(10)} ${c.detail}${c.fix ? `\n${' '.repeat(18)}fix: ${c.fix}` : ''}`).join('\n')}\n`;
}
