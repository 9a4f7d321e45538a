/** Exit codes, documented in docs/cli.md and `credport --help`. */
export const EXIT = {
  ok: 0,
  /** Could not get credentials, upstream refused, daemon unhealthy. */
  failure: 1,
  /** Bad command line. */
  usage: 2,
  /** Config, key or token file missing, invalid or insecure. */
  config: 3,
  /** The daemon is not running or not reachable. */
  daemonDown: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI prints as one line (plus an optional hint) and exits with. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message);
  }
}
