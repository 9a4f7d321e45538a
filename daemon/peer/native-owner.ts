// Placeholder until the native lookup lands: no addon lookup, so callers use /proc or lsof.
export interface SocketOwner { uid: number; inode: number; state: number; pid?: number }
export function nativeOwnerLookup(): ((family: 4 | 6, localAddress: string, localPort: number, remoteAddress: string, remotePort: number) => SocketOwner | undefined) | undefined {
  return undefined;
}
