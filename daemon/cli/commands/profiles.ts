/** `credport profiles`: every configured profile, where it is served, and its state in the running daemon. */
import type { HealthReport } from '../../server/health-report.js';
import { parseFlags } from '../args.js';
import { EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { credentialsUrl, imdsEndpoint } from '../endpoints.js';
import { askDaemon, clientBaseUrl, expectedDaemonUid, loadCliConfig } from '../shared.js';

const HELP = `Usage: credport profiles [options]

Lists the profiles in the config: type, role, the URL each is served at
(AWS_CONTAINER_CREDENTIALS_FULL_URI; the default profile also through IMDS,
AWS_EC2_METADATA_SERVICE_ENDPOINT) and its state in the running daemon
("daemon not running" when there is none; the list still comes from the config).

Options:
  --json             print one JSON object
  -c, --config PATH  config file
  -h, --help         show this help`;

export interface ProfileListing {
  name: string;
  type: string;
  roleArn: string | null;
  default: boolean;
  ecsUrl: string;
  imdsEndpoint: string | null;
  state: string;
  expiration: string | null;
}

const NOT_RUNNING = 'daemon not running';
/** In the config, but the daemon runs an older one. */
const NOT_LOADED = "not loaded (run 'credport reload')";

export const profilesCommand: Command = {
  name: 'profiles',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('profiles', argv, { json: { type: 'boolean' } });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const cfg = loadCliConfig(values.config, io);
    const base = clientBaseUrl(cfg.daemon.listen);
    const reply = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
    const report = reply.reachable && reply.status === 200 && typeof reply.body === 'object' && reply.body !== null && 'profiles' in reply.body ? (reply.body as HealthReport) : undefined;
    const listing: ProfileListing[] = [...cfg.profiles].map(([name, p]) => {
      const live = report?.profiles[name];
      const isDefault = name === cfg.defaultProfile;
      return {
        name,
        type: p.type,
        roleArn: 'role_arn' in p && typeof p.role_arn === 'string' ? p.role_arn : null,
        default: isDefault,
        ecsUrl: credentialsUrl(cfg, name),
        imdsEndpoint: isDefault ? imdsEndpoint(cfg) : null,
        state: !reply.reachable ? NOT_RUNNING : live ? live.state : report ? NOT_LOADED : `daemon answered HTTP ${reply.status}`,
        expiration: live?.expiration ?? null,
      };
    });
    if (values.json) {
      io.stdout(`${JSON.stringify({ config: cfg.file, daemon: { url: base, running: reply.reachable }, defaultProfile: cfg.defaultProfile, profiles: listing }, null, 2)}\n`);
      return EXIT.ok;
    }
    const rows = [['PROFILE', 'TYPE', 'STATE', 'ENDPOINTS']];
    for (const l of listing) {
      rows.push([l.name + (l.default ? '*' : ''), l.type, l.state, `ECS  ${l.ecsUrl}`]);
      if (l.imdsEndpoint) rows.push(['', '', '', `IMDS ${l.imdsEndpoint}`]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    const table = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
    io.stdout(`${table}\n\n* default profile; config ${cfg.file}\n`);
    return EXIT.ok;
  },
};
