/**
 * A dry bind: can this process listen where the daemon will? Asked by `credport init` (to pick a
 * default port that works for the user running it) and by `credport service install` (so that a unit
 * is never installed for a daemon that cannot start).
 */
import { createServer } from 'node:net';
import { formatListen, type ListenAddress } from '../config/listen.js';

export type BindProbe = { ok: true } | { ok: false; code: string; address: string };

/** The port `credport init` writes when port 80 needs privileges this user lacks (Linux, not root). */
export const UNPRIVILEGED_LISTEN = '127.0.0.1:9911';

function bindOnce(host: string, port: number): Promise<BindProbe> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      resolve({ ok: false, code: err.code ?? 'EUNKNOWN', address: formatListen({ host, port }) }),
    );
    // exclusive: a cluster primary must not share the socket; the probe wants the kernel's own answer.
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve({ ok: true })));
  });
}

/** Binds and releases every address the daemon would bind for `listen` ('localhost' is 127.0.0.1 and ::1). */
export async function probeBind(listen: ListenAddress): Promise<BindProbe> {
  const hosts = listen.host === 'localhost' ? ['127.0.0.1', '::1'] : [listen.host];
  for (const host of hosts) {
    const r = await bindOnce(host, listen.port);
    // ::1 missing (IPv6 off) is fine for 'localhost': the daemon then serves 127.0.0.1 alone.
    if (!r.ok && !(listen.host === 'localhost' && host === '::1' && r.code === 'EADDRNOTAVAIL')) return r;
  }
  return { ok: true };
}

/** One line that says why the bind failed and what to do. */
export function bindProblem(r: Extract<BindProbe, { ok: false }>, port: number): string {
  switch (r.code) {
    case 'EACCES':
      return `this user may not listen on ${r.address}: ports below 1024 need privileges on Linux; listen on ${UNPRIVILEGED_LISTEN} (--listen) or see docs/setup-linux.md for port ${port}`;
    case 'EADDRINUSE':
      return `${r.address} is already in use; stop the process that holds it or choose another address`;
    case 'EADDRNOTAVAIL':
      return `${r.address} does not exist on this machine${r.address.startsWith('[') ? ' (IPv6 disabled?)' : ''}; listen on 127.0.0.1:${port} instead`;
    default:
      return `cannot listen on ${r.address} (${r.code})`;
  }
}
