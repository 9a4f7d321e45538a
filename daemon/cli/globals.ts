/** The options that may come before the command word: read by main.ts and by the slim path (cli/fast/). */
/**
 * `--config PATH` (`-c PATH`, `--config=PATH`) and `--json` given before the command: taken off the
 * front and handed to the command, whose own parser then accepts or refuses them as usual.
 */
export function leadingGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '--json' || a.startsWith('--config=')) {
      globals.push(a);
      i += 1;
    } else if ((a === '--config' || a === '-c') && i + 1 < argv.length) {
      globals.push(a, argv[i + 1]!);
      i += 2;
    } else break;
  }
  return { globals, rest: argv.slice(i) };
}
