/** What the peer-identity code answers about the other end of a loopback TCP connection. */

/** A TCP connection as seen from one end: whose socket we look for is the one bound to `local`. */
export interface SocketTuple {
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** The kernel's answer for one socket. `inode` is 0 where the platform has none (macOS). */
export interface SocketOwner {
  uid: number;
  inode: number;
  /** The kernel's TCP state number: 1 ESTABLISHED, 6 TIME_WAIT, 10 LISTEN. */
  state: number;
  /** Known directly on macOS (libproc); found through /proc on Linux when asked for. */
  pid?: number;
}

export const TCP_ESTABLISHED = 1;
export const TCP_TIME_WAIT = 6;
export const TCP_LISTEN = 10;

/** The process holding a socket, as far as the daemon may see it. */
export interface PeerProcess {
  pid: number;
  /** The executable's absolute path; null where it cannot be read. */
  exe: string | null;
  argv0: string | null;
}

export type OwnerLookup = (t: SocketTuple) => SocketOwner | undefined;

/** Thrown where a socket's owner cannot be asked at all (no addon, no /proc, no lsof). */
export class PeerLookupUnavailableError extends Error {
  override readonly name = 'PeerLookupUnavailableError';
}
