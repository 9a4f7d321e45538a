/**
 * macOS LaunchAgent: render the plist from launchd/dev.credport.daemon.plist.in
 * and drive launchctl's modern verbs (bootstrap, bootout, kickstart, print) in
 * the gui/<uid> domain.
 */
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/secure-file.js';
import { DAEMON_NODE_FLAGS } from './node-flags.js';
import { runTool, type ServiceContext, type ServiceManager, type ServiceStatus } from './manager.js';

export const LAUNCHD_LABEL = 'dev.credport.daemon';

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderPlist(c: ServiceContext, template: string): string {
  const values: Record<string, string> = {
    LABEL: LAUNCHD_LABEL,
    NODE: c.node,
    ENTRY: c.entry,
    CONFIG: c.config,
    HOME: c.home,
    LOG_DIR: join(c.home, 'Library', 'Logs', 'credport'),
    VERSION: c.version,
  };
  // One <string> per flag, in the template's own indentation: a list, unlike the values above.
  const flags = (indent: string): string => DAEMON_NODE_FLAGS.map((f) => `${indent}<string>${xml(f)}</string>`).join('\n');
  return template
    .replace(/^( *)\{\{NODE_FLAGS\}\}$/m, (_m, indent: string) => flags(indent))
    .replace(/\{\{([A-Z_]+)\}\}/g, (_m, k: string) => {
      const v = values[k];
      if (v === undefined) throw new Error(`plist template names an unknown value {{${k}}}`);
      return xml(v);
    });
}

export function plistPath(home: string): string {
  return join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
}

export class LaunchdManager implements ServiceManager {
  readonly name = 'launchd';
  constructor(private readonly c: ServiceContext) {}

  get #domain(): string {
    return `gui/${this.c.uid}`;
  }
  get #target(): string {
    return `${this.#domain}/${LAUNCHD_LABEL}`;
  }

  unitPath(): string {
    return plistPath(this.c.home);
  }

  async install(): Promise<string[]> {
    const notes: string[] = [];
    const path = this.unitPath();
    const rendered = renderPlist(this.c, readFileSync(this.c.templatePath, 'utf8'));
    const previous = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    mkdirSync(join(this.c.home, 'Library', 'LaunchAgents'), { recursive: true });
    mkdirSync(join(this.c.home, 'Library', 'Logs', 'credport'), { recursive: true, mode: 0o700 });
    writeFileAtomic(path, rendered, 0o644);
    notes.push(previous === undefined ? `wrote ${path}` : previous === rendered ? `${path} is up to date` : `updated ${path}`);
    const loaded = (await runTool('launchctl', ['print', this.#target])).code === 0;
    if (loaded && previous === rendered) {
      notes.push('already loaded');
      return notes;
    }
    // A changed plist only takes effect after the job is unloaded and loaded again.
    if (loaded) await runTool('launchctl', ['bootout', this.#target]);
    let r = await runTool('launchctl', ['bootstrap', this.#domain, path]);
    // "Bootstrap failed: 5: Input/output error": launchd still has the job; unload and retry once.
    if (r.code !== 0 && /\b5\b|already/i.test(r.stderr)) {
      await runTool('launchctl', ['bootout', this.#target]);
      r = await runTool('launchctl', ['bootstrap', this.#domain, path]);
    }
    if (r.code !== 0) throw new Error(`launchctl bootstrap failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    notes.push(`loaded ${LAUNCHD_LABEL} in ${this.#domain}`);
    return notes;
  }

  async uninstall(): Promise<string[]> {
    const notes: string[] = [];
    const r = await runTool('launchctl', ['bootout', this.#target]);
    notes.push(r.code === 0 ? `unloaded ${LAUNCHD_LABEL}` : `${LAUNCHD_LABEL} was not loaded`);
    const path = this.unitPath();
    if (existsSync(path)) {
      unlinkSync(path);
      notes.push(`removed ${path}`);
    }
    return notes;
  }

  async start(): Promise<void> {
    await this.#must(['kickstart', this.#target]);
  }

  async stop(): Promise<void> {
    // SIGTERM makes the daemon exit 0, which KeepAlive/SuccessfulExit=false does not restart.
    await this.#must(['kill', 'SIGTERM', this.#target]);
  }

  async restart(): Promise<void> {
    await this.#must(['kickstart', '-k', this.#target]);
  }

  async status(): Promise<ServiceStatus> {
    const r = await runTool('launchctl', ['print', this.#target]);
    if (r.code !== 0) return { installed: existsSync(this.unitPath()), loaded: false, running: false };
    const pid = /^\s*pid = (\d+)/m.exec(r.stdout)?.[1];
    const lastExit = /^\s*last exit code = (.+)$/m.exec(r.stdout)?.[1];
    const state = /^\s*state = (\S+)/m.exec(r.stdout)?.[1];
    return {
      installed: true,
      loaded: true,
      running: state === 'running' || pid !== undefined,
      ...(pid ? { pid: Number(pid) } : {}),
      ...(lastExit ? { lastExit: lastExit.trim() } : {}),
    };
  }

  async #must(args: string[]): Promise<void> {
    const r = await runTool('launchctl', args);
    if (r.code !== 0) {
      const notFound = /could not find service|no such process|not found/i.test(r.stderr) || r.code === 113;
      throw new Error(
        notFound
          ? `${LAUNCHD_LABEL} is not loaded; run 'credport service install'`
          : `launchctl ${args[0]} failed: ${r.stderr.trim() || `exit ${r.code}`}`,
      );
    }
  }
}
