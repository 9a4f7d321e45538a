/** The module-loader hook of trace-loads.ts: one line per loaded ES module, to $LOADED_LOG. */
import { appendFileSync } from 'node:fs';

type Next = (url: string, context: unknown) => Promise<unknown>;

export async function load(url: string, context: unknown, next: Next): Promise<unknown> {
  const log = process.env.LOADED_LOG;
  if (log) appendFileSync(log, `${url}\n`);
  return next(url, context);
}
