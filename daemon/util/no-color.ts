/** The NO_COLOR convention (https://no-color.org): set and non-empty means no ANSI colour, anywhere. */
export function colourAllowed(env: Readonly<Record<string, string | undefined>>): boolean {
  return !env.NO_COLOR;
}
