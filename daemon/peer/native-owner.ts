/**
 * The native fast path of peer identification: the owner of a TCP socket,
 * found by its 4-tuple in the addon (netlink sock_diag on Linux, libproc on
 * macOS; enclave-addon/src/peer_*.cc). undefined when there is none to use, so
 * that the caller falls back to reading /proc/net/tcp.
 *
 * What the caller must know about an answer:
 * - undefined: no such socket (the peer closed first). Unidentified.
 * - state 6 (TIME_WAIT), or inode 0 on Linux: the socket is closed and no
 *   process holds it; its uid reads 0, which is NOT root. Unidentified.
 * - a thrown Error (its `code` an errno name, e.g. ETIMEDOUT): the lookup
 *   failed. Unidentified. The daemon never fails open on any of these.
 */
import { loadAddon, type NativeAddon } from '../keys/native/addon.js';
import type { SocketOwner } from './types.js';

export type { SocketOwner };

export type SocketOwnerLookup = (
  family: 4 | 6,
  localAddress: string,
  localPort: number,
  remoteAddress: string,
  remotePort: number,
) => SocketOwner | undefined;

let cached: { lookup: SocketOwnerLookup | undefined } | undefined;

/**
 * The lookup, or undefined when the addon is not built or the platform has
 * no native lookup (ENOTSUP). Decided once per process, on first use: nothing
 * is loaded until a caller asks.
 */
export function nativeOwnerLookup(): SocketOwnerLookup | undefined {
  cached ??= { lookup: probe() };
  return cached.lookup;
}

function probe(): SocketOwnerLookup | undefined {
  const load = loadAddon();
  if (!load.available || typeof load.addon.socketOwner !== 'function') return undefined;
  const addon: NativeAddon = load.addon;
  try {
    // A LISTEN lookup that costs one kernel round trip. It is also where the
    // addon finds out whether the kernel answers at all (netlink, tcp_diag).
    addon.socketOwner(4, '127.0.0.1', 1, '0.0.0.0', 0);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOTSUP') return undefined;
    // Anything else may be passing (a timeout); later calls report their own.
  }
  return (family, localAddress, localPort, remoteAddress, remotePort) =>
    addon.socketOwner(family, localAddress, localPort, remoteAddress, remotePort) ?? undefined;
}
