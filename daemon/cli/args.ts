/** Flag parsing on node:util parseArgs, with errors that say which command's --help to read. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError, EXIT } from './cli-error.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export function parseFlags<O extends Options>(command: string, argv: string[], options: O, allowPositionals = 0) {
  try {
    const parsed = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: allowPositionals > 0, strict: true });
    if (parsed.positionals.length > allowPositionals) {
      throw new CliError(`unexpected argument "${parsed.positionals[allowPositionals]}"`, EXIT.usage, `see 'credport ${command} --help'`);
    }
    return parsed;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError((err as Error).message.split('\n')[0] ?? 'invalid arguments', EXIT.usage, `see 'credport ${command} --help'`);
  }
}
