/**
 * One way to ask "who owns this TCP socket", chosen once per process: the
 * native addon (netlink sock_diag on Linux, libproc on macOS) where it is
 * built, else /proc/net/tcp on Linux, else lsof. Every answer is the kernel's;
 * none comes from the peer.
 */
import { nativeOwnerLookup } from './native-owner.js';
import { rationedTableLookup } from './tcp-table.js';
import { PeerLookupUnavailableError, TCP_ESTABLISHED, TCP_LISTEN, type SocketOwner, type SocketTuple } from './types.js';

export type OwnerQuery = (t: SocketTuple) => SocketOwner | undefined | Promise<SocketOwner | undefined>;

export interface OwnerLookupChoice {
  method: 'native' | 'proc' | 'lsof';
  lookup: OwnerQuery;
}

/** macOS without the addon: lsof lists the connection with its pid and (with -Fu) uid. */
async function lsofLookup(t: SocketTuple): Promise<SocketOwner | undefined> {
  const host = (a: string) => (a.includes(':') ? `[${a}]` : a);
  const spec = `TCP@${host(t.localAddress)}:${t.localPort}`;
  // Loaded here: only macOS without the addon gets this far, and the CLI's auth should not pay for it.
  // Not import(): in the bundle's CommonJS slim.cjs, that would start node's ES module loader.
  const { execFile } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve) => {
    execFile('lsof', ['-nP', '-a', `-i${spec}`, '-Fpun', '-w'], { timeout: 2000, maxBuffer: 64 * 1024 }, (err, out) => {
      if (err && !out) return resolve(undefined);
      const want = `${host(t.localAddress)}:${t.localPort}->${host(t.remoteAddress)}:${t.remotePort}`;
      let pid: number | undefined;
      let uid: number | undefined;
      for (const line of String(out).split('\n')) {
        if (line.startsWith('p')) pid = Number(line.slice(1));
        else if (line.startsWith('u')) uid = Number(line.slice(1));
        else if (line.startsWith('n') && line.slice(1) === want && pid !== undefined && uid !== undefined) {
          return resolve({ uid, inode: 0, state: TCP_ESTABLISHED, pid });
        }
      }
      resolve(undefined);
    });
  });
}

export function chooseOwnerLookup(platform: NodeJS.Platform = process.platform): OwnerLookupChoice {
  const native = nativeOwnerLookup();
  if (native) return { method: 'native', lookup: (t) => native(t.family, t.localAddress, t.localPort, t.remoteAddress, t.remotePort) };
  if (platform === 'linux') return { method: 'proc', lookup: rationedTableLookup() };
  if (platform === 'darwin') return { method: 'lsof', lookup: lsofLookup };
  return {
    method: 'proc',
    lookup: () => {
      throw new PeerLookupUnavailableError(`credport cannot tell which user is on the other end of a connection on ${platform}`);
    },
  };
}

/** The uid that owns the socket listening on address:port (for the CLI's check of the daemon). */
export function listenerTuple(family: 4 | 6, address: string, port: number): SocketTuple {
  return { family, localAddress: address, localPort: port, remoteAddress: family === 4 ? '0.0.0.0' : '::', remotePort: 0 };
}

export { TCP_LISTEN };
