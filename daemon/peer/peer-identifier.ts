/**
 * Who is on the other end of each accepted connection: the uid from the
 * kernel, asked once per connection and kept with the socket (a keep-alive
 * connection keeps its answer), and the process only when someone asks for
 * it. A peer that cannot be identified (it closed first, the lookup failed,
 * the socket is in TIME_WAIT, where the kernel reports uid 0 and no inode)
 * is "unidentified", which every policy refuses: the daemon never fails open.
 */
import type { Socket } from 'node:net';
import { describeProcess, ProcessFinder } from './process-finder.js';
import type { OwnerQuery } from './socket-owner.js';
import { unmapIPv4 } from './tcp-table.js';
import { TCP_TIME_WAIT, type PeerProcess, type SocketOwner, type SocketTuple } from './types.js';

export type PeerResult = { ok: true; uid: number; owner: SocketOwner } | { ok: false; reason: string };

interface Entry {
  result?: PeerResult;
  pending?: Promise<PeerResult>;
  process?: Promise<PeerProcess | undefined>;
  processKnown?: PeerProcess | null;
}

function tupleOf(socket: Socket): SocketTuple | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || !remotePort || !localAddress || !localPort) return undefined;
  const family = socket.remoteFamily === 'IPv6' && unmapIPv4(remoteAddress) === remoteAddress ? 6 : 4;
  // The peer's own socket: bound to its address, connected to ours.
  return {
    family,
    localAddress: unmapIPv4(remoteAddress),
    localPort: remotePort,
    remoteAddress: unmapIPv4(localAddress),
    remotePort: localPort,
  };
}

function judge(owner: SocketOwner | undefined): PeerResult {
  if (!owner) return { ok: false, reason: "the peer's socket was not found (it closed first?)" };
  if (owner.state === TCP_TIME_WAIT || (owner.inode === 0 && owner.pid === undefined)) {
    return { ok: false, reason: "the peer's socket is closing and has no owner" };
  }
  return { ok: true, uid: owner.uid, owner };
}

export interface PeerIdentifierOptions {
  lookup: OwnerQuery;
  finder?: ProcessFinder;
  /** Counts lookups and failures (metrics, benchmark). */
  onLookup?: (ok: boolean) => void;
}

export class PeerIdentifier {
  readonly #lookup: OwnerQuery;
  readonly #finder: ProcessFinder;
  readonly #onLookup: PeerIdentifierOptions['onLookup'];
  readonly #entries = new WeakMap<Socket, Entry>();

  constructor(o: PeerIdentifierOptions) {
    this.#lookup = o.lookup;
    this.#finder = o.finder ?? new ProcessFinder();
    this.#onLookup = o.onLookup;
  }

  #entry(socket: Socket): Entry {
    let e = this.#entries.get(socket);
    if (!e) {
      e = {};
      this.#entries.set(socket, e);
    }
    return e;
  }

  /** The answer if it is already known (the fast path never waits). */
  known(socket: Socket): PeerResult | undefined {
    return this.#entries.get(socket)?.result;
  }

  /** The peer's uid, looked up on first use and then kept for the connection's life. */
  identify(socket: Socket): PeerResult | Promise<PeerResult> {
    const e = this.#entry(socket);
    if (e.result) return e.result;
    if (e.pending) return e.pending;
    const settle = (r: PeerResult): PeerResult => {
      e.result = r;
      e.pending = undefined;
      this.#onLookup?.(r.ok);
      return r;
    };
    const t = tupleOf(socket);
    if (!t) return settle({ ok: false, reason: 'the connection has no peer address (it closed first?)' });
    let answer: ReturnType<OwnerQuery>;
    try {
      answer = this.#lookup(t);
    } catch (err) {
      return settle({ ok: false, reason: `the peer could not be identified: ${(err as Error).message}` });
    }
    if (!(answer instanceof Promise)) return settle(judge(answer));
    e.pending = answer
      .then(judge, (err: Error) => ({ ok: false as const, reason: `the peer could not be identified: ${err.message}` }))
      .then(settle);
    return e.pending;
  }

  /** The peer's process (pid, executable, argv[0]), looked up once per connection when first asked for. */
  process(socket: Socket): Promise<PeerProcess | undefined> {
    const e = this.#entry(socket);
    if (e.process) return e.process;
    e.process = Promise.resolve(this.identify(socket)).then(async (r) => {
      if (!r.ok) return undefined;
      if (r.owner.pid !== undefined)
        return process.platform === 'linux' ? describeProcess(r.owner.pid) : describeOtherPlatform(r.owner.pid);
      return this.#finder.find(r.owner.inode, r.uid);
    });
    void e.process.then((p) => {
      e.processKnown = p ?? null;
    });
    return e.process;
  }

  /** The process if already looked up: undefined = not asked yet or pending, null = unknown. */
  knownProcess(socket: Socket): PeerProcess | null | undefined {
    return this.#entries.get(socket)?.processKnown;
  }

  get finderStats(): ProcessFinder['stats'] {
    return this.#finder.stats;
  }
}

/** Where /proc does not exist, `ps` names the executable of a pid the kernel gave us. */
async function describeOtherPlatform(pid: number): Promise<PeerProcess> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'comm=', '-p', String(pid)], { timeout: 2000, maxBuffer: 16 * 1024 }, (err, out) => {
      const exe = err ? null : String(out).trim() || null;
      resolve({ pid, exe, argv0: exe });
    });
  });
}
