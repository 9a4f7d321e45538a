/** Flag parsing on node:util parseArgs, with errors that say which command's --help to read. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError, EXIT } from './cli-error.js';
import type { Command } from './command.js';
import type { CliIo } from './io.js';
import { closest } from '../util/suggest.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** Set only while flagsOf() asks a command for its options; parseFlags then stops the command. */
let capture: ((options: Options) => void) | undefined;

class FlagsCaptured extends Error {}

export function parseFlags<O extends Options>(command: string, argv: string[], options: O, allowPositionals = 0) {
  if (capture) {
    capture({ ...COMMON_OPTIONS, ...options });
    throw new FlagsCaptured();
  }
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...options },
      allowPositionals: allowPositionals > 0,
      strict: true,
    });
    if (parsed.positionals.length > allowPositionals) {
      throw new CliError(`unexpected argument "${parsed.positionals[allowPositionals]}"`, EXIT.usage, `see 'credport ${command} --help'`);
    }
    return parsed;
  } catch (err) {
    if (err instanceof CliError) throw err;
    const help = `see 'credport ${command} --help'`;
    const unknown = /^Unknown option '([^']+)'/.exec((err as Error).message)?.[1];
    if (unknown !== undefined) {
      const names = Object.keys({ ...COMMON_OPTIONS, ...options }).map((n) => `--${n}`);
      const near = closest(unknown.split('=')[0] ?? unknown, names);
      throw new CliError(`unknown option '${unknown}'`, EXIT.usage, near ? `did you mean '${near}'? ${help}` : help);
    }
    throw new CliError((err as Error).message.split('\n')[0] ?? 'invalid arguments', EXIT.usage, help);
  }
}

const silentIo: CliIo = { stdout: () => {}, stderr: () => {}, env: {}, isTty: false };

/**
 * The options a command's own parseFlags call declares, read by running it up to that call (which
 * throws before the command does anything). Completion scripts come from this, so they cannot
 * drift from what the parser accepts.
 */
export async function flagsOf(command: Command): Promise<Options> {
  let found: Options = { ...COMMON_OPTIONS };
  capture = (o) => (found = o);
  try {
    await command.run(['--help'], silentIo);
  } catch (err) {
    if (!(err instanceof FlagsCaptured)) throw err;
  } finally {
    capture = undefined;
  }
  return found;
}
