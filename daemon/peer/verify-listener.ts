/**
 * The other way round: before the CLI sends the daemon anything (the ECS
 * token above all), it checks that the process answering on the daemon's
 * port runs as the daemon's user. While the daemon is down, another local
 * user can bind its port; without this check `credport auth` would hand that
 * user the token and believe its answer. SDKs cannot make this check; the
 * token's rotation at every daemon start limits what a stolen one is worth.
 */
import { connect, type Socket } from 'node:net';
import { chooseOwnerLookup } from './socket-owner.js';
import { unmapIPv4 } from './tcp-table.js';
import { TCP_LISTEN, type SocketOwner, type SocketTuple } from './types.js';

export class ListenerNotVerifiedError extends Error {
  override readonly name = 'ListenerNotVerifiedError';
}

async function ownerOfServerEnd(socket: Socket): Promise<SocketOwner | undefined> {
  const lookup = chooseOwnerLookup().lookup;
  const server = unmapIPv4(socket.remoteAddress ?? '');
  const family = server.includes(':') ? 6 : 4;
  const conn: SocketTuple = {
    family,
    localAddress: server,
    localPort: socket.remotePort ?? 0,
    remoteAddress: unmapIPv4(socket.localAddress ?? ''),
    remotePort: socket.localPort ?? 0,
  };
  const found = await lookup(conn);
  // A connection the daemon has not accepted yet has no inode; the listening socket then says who it is.
  if (found && found.inode !== 0) return found;
  const listener = await lookup({
    family,
    localAddress: server,
    localPort: conn.localPort,
    remoteAddress: family === 4 ? '0.0.0.0' : '::',
    remotePort: 0,
  });
  return listener?.state === TCP_LISTEN ? listener : found;
}

/** A connected socket to host:port whose other end is proven to belong to `expectedUid`. */
export function connectVerified(host: string, port: number, expectedUid: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`timed out connecting to ${host}:${port}`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => {
      ownerOfServerEnd(socket).then(
        (owner) => {
          clearTimeout(timer);
          if (owner && owner.uid === expectedUid) return resolve(socket);
          socket.destroy();
          reject(
            new ListenerNotVerifiedError(
              owner
                ? `the process listening on ${host}:${port} runs as uid ${owner.uid}, not as the daemon's user (uid ${expectedUid}); refusing to talk to it (another user may have taken the daemon's port)`
                : `could not tell who listens on ${host}:${port}; refusing to send it anything`,
            ),
          );
        },
        (err: Error) => {
          clearTimeout(timer);
          socket.destroy();
          reject(new ListenerNotVerifiedError(`could not tell who listens on ${host}:${port}: ${err.message}`));
        },
      );
    });
  });
}
