/** `credport profiles`: every configured profile, where it is served, and its state in the running daemon. */
import type { HealthReport } from '../../server/health-report.js';
import { parseFlags } from '../args.js';
import { EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { cloudOfType } from '../../clouds/registry.js';
import { profileType } from '../../clouds/specs.js';
import type { EndpointListing } from '../../clouds/types.js';
import { locateDaemon } from '../daemon-locator.js';
import { askDaemon, expectedDaemonUid, loadCliConfig } from '../shared.js';

const HELP = `Usage: credport profiles [options]

Lists the profiles in the config: type, who the credentials act as (a role,
a service account), where each is served (AWS: the container-credentials URL,
and IMDS for the default profile; Google Cloud: the subject-token URL and the
metadata server when enabled) and its state in the running daemon ("daemon not
running" when there is none; the list still comes from the config).

Options:
  --json             print one JSON object
  -c, --config PATH  config file
  -h, --help         show this help`;

export interface ProfileListing {
  name: string;
  type: string;
  cloud: string;
  /** The role ARN, service account or other identity the credentials act as. */
  principal: string;
  default: boolean;
  endpoints: EndpointListing[];
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
    const base = locateDaemon(cfg).base;
    const reply = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
    const report =
      reply.reachable && reply.status === 200 && typeof reply.body === 'object' && reply.body !== null && 'profiles' in reply.body
        ? (reply.body as HealthReport)
        : undefined;
    const ctx = { config: cfg, env: io.env, baseUrl: base };
    const clis = new Map(
      await Promise.all(
        [...new Set([...cfg.profiles.values()].map((p) => cloudOfType(p.type)))].map(async (c) => [c?.name, await c?.cli()] as const),
      ),
    );
    const listing: ProfileListing[] = [...cfg.profiles].map(([name, p]) => {
      const live = report?.profiles[name];
      const found = profileType(p.type);
      const cloud = found?.cloud.name ?? '';
      return {
        name,
        type: p.type,
        cloud,
        principal: found?.spec.principal(p) ?? '',
        default: cfg.defaults[cloud] === name,
        endpoints: clis.get(cloud)?.listing(ctx, name) ?? [],
        state: !reply.reachable ? NOT_RUNNING : live ? live.state : report ? NOT_LOADED : `daemon answered HTTP ${reply.status}`,
        expiration: live?.expiration ?? null,
      };
    });
    if (values.json) {
      io.stdout(
        `${JSON.stringify({ config: cfg.file, daemon: { url: base, running: reply.reachable }, defaultProfile: cfg.defaultProfile, profiles: listing }, null, 2)}\n`,
      );
      return EXIT.ok;
    }
    const rows = [['PROFILE', 'TYPE', 'STATE', 'ENDPOINTS']];
    const labelWidth = Math.max(0, ...listing.flatMap((l) => l.endpoints.map((e) => e.label.length)));
    for (const l of listing) {
      const [first, ...more] = l.endpoints.map((e) => `${e.label.padEnd(labelWidth)} ${e.url}`);
      rows.push([l.name + (l.default ? '*' : ''), l.type, l.state, first ?? '-']);
      for (const line of more) rows.push(['', '', '', line]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    const table = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
    io.stdout(`${table}\n\n* default profile; config ${cfg.file}\n`);
    return EXIT.ok;
  },
};
