/**
 * Linux: a systemd user unit (default) or, with --system, a system unit that
 * runs as a dedicated account and binds port 80 through CAP_NET_BIND_SERVICE
 * instead of root.
 */
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/secure-file.js';
import { DAEMON_NODE_FLAGS } from './node-flags.js';
import { runTool, type ServiceContext, type ServiceManager, type ServiceStatus } from './manager.js';

export const UNIT_NAME = 'credport.service';

/** `credport serve`'s exit codes for a bad command line (2) and a bad config, key or token file (3): retrying cannot help. */
const NO_RESTART_EXIT = [2, 3];

/** systemd's quoting for ExecStart words: double quotes, with \ and " escaped; % doubled (specifiers). */
const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
/** Paths in ReadWritePaths= are space-separated; a space inside one is written \x20... systemd accepts quoting here too. */
const pathList = (ps: string[]): string => ps.map((p) => (/\s/.test(p) ? q(p) : p.replace(/%/g, '%%'))).join(' ');

export function renderUnit(c: ServiceContext, system: boolean): string {
  const lines = [
    `# credport ${c.version}, written by \`credport service install${system ? ' --system' : ''}\`.`,
    '[Unit]',
    'Description=credport: short-lived cloud credentials from a device-bound key',
    // A user manager has no network-online.target (it would do nothing there); the system one does.
    ...(system ? ['After=network-online.target', 'Wants=network-online.target'] : []),
    // Other failures (upstream, a port taken for a moment) are retried, but at most 5 starts a minute.
    'StartLimitIntervalSec=60',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=simple',
    ...Object.entries(system ? {} : (c.environment ?? {})).map(([k, v]) => `Environment=${q(`${k}=${v}`)}`),
    `ExecStart=${[c.node, ...DAEMON_NODE_FLAGS, c.entry].map(q).join(' ')} serve --config ${q(c.config)}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=5',
    `RestartPreventExitStatus=${NO_RESTART_EXIT.join(' ')}`,
    'UMask=0077',
  ];
  if (system) {
    lines.push(
      `User=${c.systemUser ?? 'credport'}`,
      `Group=${c.systemUser ?? 'credport'}`,
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
      'StateDirectory=credport',
      'StateDirectoryMode=0700',
      'ProtectHome=yes',
    );
  } else {
    lines.push('ProtectHome=read-only');
  }
  lines.push(
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'PrivateTmp=yes',
    `ReadWritePaths=${pathList(c.writablePaths)}`,
    // AF_NETLINK: the addon asks the kernel (sock_diag) which uid owns each local connection; without it
    // every lookup falls back to reading /proc/net/tcp whole, which grows with the machine's connections.
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'SystemCallArchitectures=native',
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  );
  return lines.join('\n');
}

export class SystemdManager implements ServiceManager {
  readonly name: string;
  constructor(
    private readonly c: ServiceContext,
    private readonly system: boolean,
    private readonly systemDir = '/etc/systemd/system',
  ) {
    this.name = system ? 'systemd (system)' : 'systemd (user)';
  }

  #ctl(args: string[]) {
    return runTool('systemctl', this.system ? args : ['--user', ...args]);
  }

  unitPath(): string {
    return this.system
      ? join(this.systemDir, UNIT_NAME)
      : join(this.c.userUnitDir ?? join(this.c.home, '.config', 'systemd', 'user'), UNIT_NAME);
  }

  async install(): Promise<string[]> {
    const path = this.unitPath();
    const rendered = renderUnit(this.c, this.system);
    const previous = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    mkdirSync(dirname(path), { recursive: true });
    writeFileAtomic(path, rendered, 0o644);
    const notes = [previous === undefined ? `wrote ${path}` : previous === rendered ? `${path} is up to date` : `updated ${path}`];
    await this.#must(['daemon-reload']);
    await this.#must(['enable', UNIT_NAME]);
    // restart, not start: an upgraded unit must replace a running old one.
    await this.#must([previous === rendered ? 'start' : 'restart', UNIT_NAME]);
    notes.push(`enabled and started ${UNIT_NAME}${this.system ? '' : ' (user)'}`);
    return notes;
  }

  async uninstall(): Promise<string[]> {
    const notes: string[] = [];
    const r = await this.#ctl(['disable', '--now', UNIT_NAME]);
    notes.push(r.code === 0 ? `stopped and disabled ${UNIT_NAME}` : `${UNIT_NAME} was not enabled`);
    const path = this.unitPath();
    if (existsSync(path)) {
      unlinkSync(path);
      notes.push(`removed ${path}`);
    }
    await this.#ctl(['daemon-reload']);
    return notes;
  }

  start(): Promise<void> {
    return this.#must(['start', UNIT_NAME]);
  }
  stop(): Promise<void> {
    return this.#must(['stop', UNIT_NAME]);
  }
  restart(): Promise<void> {
    return this.#must(['restart', UNIT_NAME]);
  }

  async status(): Promise<ServiceStatus> {
    const r = await this.#ctl(['show', UNIT_NAME, '-p', 'LoadState,ActiveState,MainPID,ExecMainStatus']);
    const props = Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const pid = Number(props.MainPID ?? 0);
    return {
      installed: existsSync(this.unitPath()),
      loaded: props.LoadState === 'loaded',
      running: props.ActiveState === 'active',
      ...(pid > 0 ? { pid } : {}),
      ...(props.ExecMainStatus !== undefined ? { lastExit: props.ExecMainStatus } : {}),
    };
  }

  async #must(args: string[]): Promise<void> {
    const r = await this.#ctl(args);
    if (r.code !== 0)
      throw new Error(`systemctl ${this.system ? '' : '--user '}${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
}
