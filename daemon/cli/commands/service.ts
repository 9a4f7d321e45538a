/** `credport service install|uninstall|start|stop|restart|status`: launchd on macOS, systemd on Linux. */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatListen } from '../../config/listen.js';
import { xdgConfigHome, xdgStateHome } from '../../config/paths.js';
import type { ResolvedConfig } from '../../config/load.js';
import { bindProblem, probeBind } from '../../service/bind-probe.js';
import { runningPid } from '../../service/instance-lock.js';
import { LaunchdManager } from '../../service/launchd.js';
import type { ServiceContext, ServiceManager } from '../../service/manager.js';
import { AccountError, ensureAccount, SYSTEM_ACCOUNT, SYSTEM_STATE_DIR } from '../../service/system-account.js';
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

install first binds the configured listen address once and releases it: a
daemon that could not start is never installed. A config or usage error stops
the unit for good (no restart loop); other failures are retried 5 times a minute.

Options:
  --system           Linux: a system unit (/etc/systemd/system) running as the
                     'credport' account, binding port 80 with CAP_NET_BIND_SERVICE;
                     its key must be under /var/lib/credport: 'credport init --system'
  --user NAME        with --system: the account (default credport)
  -c, --config PATH  the config the service runs with (made absolute)
  -h, --help         show this help

Set CREDPORT_SERVICE_MANAGER=launchd|systemd to override the choice.`;

/**
 * The package root and its `bin` entry, found by walking up from this module: it sits at a different depth
 * in the bundle (dist/bundle/) than in tsc's tree (dist/daemon/cli/commands/).
 */
function packageFiles(): { root: string; entry: string } {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; bin?: { credport?: string } };
      if (pkg.name === 'credport' && typeof pkg.bin?.credport === 'string')
        return { root: dir, entry: realpathSync(join(dir, pkg.bin.credport)) };
    }
    if (dirname(dir) === dir)
      throw new CliError("credport's own package.json was not found above its code; reinstall credport", EXIT.failure);
  }
}

/**
 * The path the user ran credport by (the npm bin link, say), not where it resolves to: a unit that names
 * a clone's dist/ breaks when the clone moves, one that names the bin follows reinstalls. Falls back to
 * the package's `bin` entry when credport was not started as a program (an embedding test).
 */
function installedEntry(): string {
  const argv1 = process.argv[1];
  if (argv1 && /^credport(\.c?js)?$/.test(basename(argv1))) return resolve(argv1);
  return packageFiles().entry;
}

function chooseManager(ctx: ServiceContext, system: boolean, env: CliIo['env']): ServiceManager {
  const forced = env.CREDPORT_SERVICE_MANAGER;
  const kind = forced ?? (process.platform === 'darwin' ? 'launchd' : process.platform === 'linux' ? 'systemd' : undefined);
  if (kind === 'launchd') {
    if (system) throw new CliError('--system is for systemd; on macOS credport runs as a LaunchAgent of the logged-in user', EXIT.usage);
    return new LaunchdManager(ctx);
  }
  if (kind === 'systemd') return new SystemdManager(ctx, system);
  throw new CliError(
    `no service manager support for ${forced ?? process.platform}`,
    EXIT.usage,
    'run credport serve under your own supervisor',
  );
}

async function ensureSystemUser(name: string): Promise<string[]> {
  const notes: string[] = [];
  try {
    await ensureAccount(name, SYSTEM_STATE_DIR, notes);
  } catch (err) {
    if (err instanceof AccountError) throw new CliError(err.message, EXIT.failure, err.hint);
    throw err;
  }
  return notes;
}

/**
 * The dry bind: the unit is installed only for a daemon that can listen where the config says. A port
 * held by this config's own service (an upgrade) is fine: the restart hands it over.
 */
async function checkListen(cfg: ResolvedConfig, manager: ServiceManager): Promise<void> {
  const probe = await probeBind(cfg.daemon.listen);
  if (probe.ok) return;
  if (probe.code === 'EADDRINUSE') {
    const pid = runningPid(cfg.daemon.lockFile);
    if (pid !== undefined) {
      const s = await manager.status();
      if (s.running && s.pid === pid) return;
      throw new CliError(
        `a credport daemon (pid ${pid}) that is not the service already serves ${formatListen(cfg.daemon.listen)} with this config; the service could not start`,
        EXIT.config,
        `stop it first (kill ${pid}), then run install again`,
      );
    }
  }
  throw new CliError(`not installed: ${bindProblem(probe, cfg.daemon.listen.port)}`, EXIT.config, `set [daemon] listen in ${cfg.file}`);
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
    if (!action || !ACTIONS.includes(action))
      throw new CliError(`expected one of ${ACTIONS.join(', ')}`, EXIT.usage, "see 'credport service --help'");
    const cfg = loadCliConfig(values.config, io);
    const writable = new Set([
      dirname(cfg.daemon.tokenFile),
      dirname(cfg.daemon.lockFile),
      ...(cfg.daemon.logFile ? [dirname(cfg.daemon.logFile)] : []),
    ]);
    const ctx: ServiceContext = {
      node: process.execPath,
      entry: installedEntry(),
      config: cfg.file,
      home: io.env.HOME ?? homedir(),
      uid: process.getuid?.() ?? 0,
      version: VERSION,
      templatePath: `${packageFiles().root}/launchd/dev.credport.daemon.plist.in`,
      writablePaths: [...writable],
      ...(values.user ? { systemUser: values.user } : {}),
      userUnitDir: join(xdgConfigHome(io.env), 'systemd', 'user'),
      // The user manager's environment is not the shell's: the daemon must expand $XDG_* in the
      // config to the same paths as this command did (ReadWritePaths is computed from them).
      environment: { XDG_CONFIG_HOME: xdgConfigHome(io.env), XDG_STATE_HOME: xdgStateHome(io.env) },
    };
    const manager = chooseManager(ctx, values.system ?? false, io.env);
    try {
      switch (action) {
        case 'install': {
          await checkListen(cfg, manager);
          const notes = values.system ? await ensureSystemUser(values.user ?? SYSTEM_ACCOUNT) : [];
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
