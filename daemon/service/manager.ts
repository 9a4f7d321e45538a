/** What the `credport service` commands need from launchd or systemd, and how tools are run. */
import { execFile } from 'node:child_process';

export interface ServiceContext {
  /** Absolute path of the node binary that will run the daemon. */
  node: string;
  /** Absolute path of the compiled CLI entry point. */
  entry: string;
  /** Absolute path of the config file the service runs with. */
  config: string;
  home: string;
  uid: number;
  version: string;
  /** launchd: the plist template. */
  templatePath: string;
  /** Paths the daemon writes (token, lock, logs): systemd's ReadWritePaths. */
  writablePaths: string[];
  /** systemd --system: the account the daemon runs as. */
  systemUser?: string;
  /** systemd user units: $XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user). */
  userUnitDir?: string;
  /** Variables the user unit sets (Environment=), so the daemon resolves paths as the CLI did. */
  environment?: Record<string, string>;
}

export interface ServiceStatus {
  installed: boolean;
  loaded: boolean;
  running: boolean;
  pid?: number;
  lastExit?: string;
}

export interface ServiceManager {
  readonly name: string;
  unitPath(): string;
  install(): Promise<string[]>;
  uninstall(): Promise<string[]>;
  start(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  status(): Promise<ServiceStatus>;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs launchctl/systemctl from PATH (tests put stand-ins first on PATH). A missing tool is code 127. */
export function runTool(cmd: string, args: string[]): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        resolve({ code: 127, stdout: '', stderr: `${cmd} not found on PATH` });
        return;
      }
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
