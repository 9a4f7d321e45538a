/** `credport service install|uninstall|start|stop|restart|status`: launchd on macOS, systemd on Linux. */
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LaunchdManager } from '../../service/launchd.js';
import { runTool, type ServiceContext, type ServiceManager } from '../../service/manager.js';
import { SystemdManager } from '../../service/systemd.js';
import type { HealthReport } from '../../server/health-report.js';
import { VERSION } from '../../version.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import type { CliIo } from '../io.js';
import { askDaemon, clientBaseUrl, expectedDaemonUid, loadCliConfig } from '../shared.js';

const ACTIONS = ['install', 'uninstall', 'start', 'stop', 'restart', 'status'] as const;
type Action = (typeof ACTIONS)[number];

const HELP = `Usage: credport service ACTION [options]

Runs credport as a service that starts at login (or boot) and restarts when it
dies: a LaunchAgent on macOS (launchctl, gui/<uid> domain), a systemd unit on
Linux (user unit by default).

Actions:
  install     write the plist/unit for the current config and start it
              (idempotent; upgrades an older plist/unit in place)
  uninstall   stop it and remove the plist/unit
  start | stop | restart
  status      the service manager's view (loaded, pid, last exit) and /health

Options:
  --system           Linux: a system unit (/etc/systemd/system) running as the
                     'credport' account, binding port 80 with CAP_NET_BIND_SERVICE
  --user NAME        with --system: the account (default credport)
  -c, --config PATH  the config the service runs with (made absolute)
  -h, --help         show this help

Set CREDPORT_SERVICE_MANAGER=launchd|systemd to override the choice.`;

function entryPoint(): string {
  return realpathSync(fileURLToPath(new URL('../credport.js', import.meta.url)));
}

function packageRoot(): string {
  return dirname(dirname(dirname(dirname(entryPoint()))));
}

function chooseManager(ctx: ServiceContext, system: boolean, env: CliIo['env']): ServiceManager {
  const forced = env.CREDPORT_SERVICE_MANAGER;
  const kind = forced ?? (process.platform === 'darwin' ? 'launchd' : process.platform === 'linux' ? 'systemd' : undefined);
  if (kind === 'launchd') {
    if (system) throw new CliError('--system is for systemd; on macOS credport runs as a LaunchAgent of the logged-in user', EXIT.usage);
    return new LaunchdManager(ctx);
  }
  if (kind === 'systemd') return new SystemdManager(ctx, system);
  throw new CliError(`no service manager support for ${forced ?? process.platform}`, EXIT.usage, 'run credport serve under your own supervisor');
}

async function ensureSystemUser(name: string): Promise<string[]> {
  if ((await runTool('id', ['-u', name])).code === 0) return [];
  if (process.getuid?.() !== 0) throw new CliError(`the account ${name} does not exist and only root can create it`, EXIT.failure, `sudo useradd --system --home-dir /var/lib/credport --shell /usr/sbin/nologin ${name}`);
  const r = await runTool('useradd', ['--system', '--home-dir', '/var/lib/credport', '--shell', '/usr/sbin/nologin', name]);
  if (r.code !== 0) throw new CliError(`useradd ${name} failed: ${r.stderr.trim()}`, EXIT.failure);
  return [`created system account ${name}`];
}

export const serviceCommand: Command = {
  name: 'service',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags('service', argv, { system: { type: 'boolean' }, user: { type: 'string' } }, 1);
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const action = positionals[0] as Action | undefined;
    if (!action || !ACTIONS.includes(action)) throw new CliError(`expected one of ${ACTIONS.join(', ')}`, EXIT.usage, "see 'credport service --help'");
    const cfg = loadCliConfig(values.config, io);
    const writable = new Set([dirname(cfg.daemon.tokenFile), dirname(cfg.daemon.lockFile), ...(cfg.daemon.logFile ? [dirname(cfg.daemon.logFile)] : [])]);
    const ctx: ServiceContext = {
      node: process.execPath,
      entry: entryPoint(),
      config: cfg.file,
      home: io.env.HOME ?? homedir(),
      uid: process.getuid?.() ?? 0,
      version: VERSION,
      templatePath: `${packageRoot()}/launchd/dev.credport.daemon.plist.in`,
      writablePaths: [...writable],
      ...(values.user ? { systemUser: values.user } : {}),
    };
    const manager = chooseManager(ctx, values.system ?? false, io.env);
    try {
      switch (action) {
        case 'install': {
          const notes = values.system ? await ensureSystemUser(values.user ?? 'credport') : [];
          notes.push(...(await manager.install()));
          io.stdout(`${notes.join('\n')}\ncheck it: credport status${values.config ? ` --config ${cfg.file}` : ''}\n`);
          return EXIT.ok;
        }
        case 'uninstall':
          io.stdout(`${(await manager.uninstall()).join('\n')}\n`);
          return EXIT.ok;
        case 'start':
        case 'stop':
        case 'restart':
          await manager[action]();
          io.stdout(`${action}: ok (${manager.name})\n`);
          return EXIT.ok;
        case 'status': {
          const s = await manager.status();
          const health = await askDaemon(clientBaseUrl(cfg.daemon.listen), '/health', {}, 3000, expectedDaemonUid(cfg));
          const h = health.reachable ? (health.body as HealthReport) : undefined;
          io.stdout(
            [
              `manager:   ${manager.name}`,
              `unit:      ${manager.unitPath()} (${s.installed ? 'installed' : 'not installed'})`,
              `loaded:    ${s.loaded ? 'yes' : 'no'}`,
              `running:   ${s.running ? `yes${s.pid ? ` (pid ${s.pid})` : ''}` : 'no'}`,
              ...(s.lastExit !== undefined ? [`last exit: ${s.lastExit}`] : []),
              `health:    ${h ? `${h.status} (${Object.keys(h.profiles).length} profile(s))` : health.reachable ? `HTTP ${health.status}` : `not reachable (${health.reason})`}`,
              '',
            ].join('\n'),
          );
          return s.running && h?.status === 'ok' ? EXIT.ok : s.running ? EXIT.failure : EXIT.daemonDown;
        }
      }
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError((err as Error).message, EXIT.failure);
    }
  },
};
