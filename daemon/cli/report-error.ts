/** How every command's failure reaches the user: one line on stderr, and the exit code. */
import { CliError, EXIT } from './cli-error.js';
import type { CliIo } from './io.js';

export function reportError(err: unknown, io: CliIo): number {
  if (err instanceof CliError) {
    io.stderr(`credport: ${err.message}${err.hint ? ` (${err.hint})` : ''}\n`);
    return err.exitCode;
  }
  // Unexpected: still one line, no stack (a stack could quote secrets from arguments).
  io.stderr(`credport: unexpected error: ${(err as Error).message ?? String(err)}\n`);
  return EXIT.failure;
}
