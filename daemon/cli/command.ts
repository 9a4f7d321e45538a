import type { CliIo } from './io.js';

export interface Command {
  name: string;
  help: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** A command as the command list knows it: loaded only when run. */
export interface CommandEntry {
  name: string;
  summary: string;
  /** Loaded only when run: `credport auth` is on the SDKs' credential_process path, so start-up counts. */
  load: () => Promise<Command>;
}
