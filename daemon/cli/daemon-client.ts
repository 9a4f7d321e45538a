/**
 * Reaching the running daemon from the CLI: its base URL, the uid it runs as, and one verified GET.
 * Imports nothing of the config loader: the slim path of `auth`, `env` and `status` uses it.
 */
import { statSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { ListenAddress } from '../config/listen.js';
import { connectVerified, ListenerNotVerifiedError } from '../peer/verify-listener.js';
import { CliError, EXIT } from './cli-error.js';
import { DaemonHttpError, getOnSocket, type RawReply } from './daemon-http.js';

/** The base URL a client on this machine uses to reach a daemon listening on `l`. */
export function clientBaseUrl(l: ListenAddress): string {
  const host = l.host === 'localhost' ? '127.0.0.1' : l.host.includes(':') ? `[${l.host}]` : l.host;
  return l.port === 80 ? `http://${host}` : `http://${host}:${l.port}`;
}

export type DaemonReply = { reachable: false; reason: string } | { reachable: true; status: number; body: unknown };

/**
 * The uid the daemon runs as: the owner of its token file, which only the daemon writes; this
 * user's own uid before the daemon has ever run.
 */
export function expectedDaemonUid(cfg: { daemon: { tokenFile: string } }): number {
  try {
    return statSync(cfg.daemon.tokenFile).uid;
  } catch {
    return process.getuid?.() ?? -1;
  }
}

const MAX_REPLY_BYTES = 1024 * 1024;

/**
 * One GET against the daemon with a short overall deadline. The listening socket must belong to
 * `expectUid` before a byte is sent (see peer/verify-listener.ts); a refused connection means
 * "not running", an impostor on the port is an error. The request itself is daemon-http.ts's.
 */
export async function askDaemon(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  timeoutMs = 3000,
  expectUid = process.getuid?.() ?? -1,
): Promise<DaemonReply> {
  const url = new URL(base);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 80);
  const deadline = Date.now() + timeoutMs;
  let socket: Socket;
  try {
    socket = await connectVerified(host, port, expectUid, timeoutMs);
  } catch (err) {
    if (err instanceof ListenerNotVerifiedError)
      throw new CliError(err.message, EXIT.failure, "check who holds the port ('credport doctor'), then restart credport");
    return { reachable: false, reason: (err as NodeJS.ErrnoException).code ?? (err as Error).name ?? 'error' };
  }
  let reply: RawReply;
  try {
    reply = await getOnSocket(socket, { path, host: url.host, headers }, { maxBytes: MAX_REPLY_BYTES, deadline });
  } catch (err) {
    if (err instanceof DaemonHttpError) return { reachable: false, reason: err.code };
    throw err;
  }
  const text = reply.body.toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { reachable: true, status: reply.status, body };
}
