/**
 * The native peer-socket lookup (enclave-addon/src/peer_linux.cc, through
 * daemon/peer/native-owner.ts) against real loopback connections: IPv4, IPv6
 * and a dual-stack listener that sees ::ffff:127.0.0.1; a client run as a
 * real second user (created with useradd, removed afterwards); closed
 * connections; LISTEN lookups; bad input. Each answer is checked against
 * /proc/net/tcp and tcp6, parsed independently (test/helpers/proc-net-tcp.ts).
 *
 * What callers must take from the closed-connection cases: a closed
 * connection is either gone (undefined) or TIME_WAIT with inode 0 and uid 0,
 * and uid 0 there is NOT root. Both are "unidentified".
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { loadAddon, packageRoot } from '../daemon/keys/native/addon.js';
import { nativeOwnerLookup, type SocketOwner, type SocketOwnerLookup } from '../daemon/peer/native-owner.js';
import { procTcpEntry } from './helpers/proc-net-tcp.js';
import { assertPresent, needs, tool, type Tool } from './helpers/tools.js';

const TCP_ESTABLISHED = 1;
const TCP_TIME_WAIT = 6;
const TCP_LISTEN = 10;

const addon = tool(
  'the credport addon (enclave-addon/build/Release/credport_enclave.node)',
  () => loadAddon().available,
  'node scripts/build-addon.mjs',
);
const linux = tool('Linux (netlink sock_diag)', () => process.platform === 'linux', 'run on Linux');
const myUid = process.getuid?.() ?? -1;

interface Pair {
  server: net.Server;
  /** The server's end of the accepted connection. */
  accepted: net.Socket;
  client: net.Socket;
  close(): Promise<void>;
}

/** A listener on listenHost and one client connected to it from connectHost. */
async function connectPair(listenHost: string, connectHost: string): Promise<Pair> {
  const server = net.createServer();
  server.listen(0, listenHost);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, connectHost);
  await once(client, 'connect');
  const [sock] = await accepted;
  return {
    server,
    accepted: sock,
    client,
    async close() {
      client.destroy();
      sock.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const family = (s: net.Socket): 4 | 6 => (s.remoteFamily === 'IPv6' ? 6 : 4);

/** The client of an accepted connection, identified the way the daemon will: from the server's side. */
function lookupClient(lookup: SocketOwnerLookup, s: net.Socket): SocketOwner | undefined {
  return lookup(family(s), s.remoteAddress!, s.remotePort!, s.localAddress!, s.localPort!);
}

/** Polls `fn` until `done` holds: at most `tries` times, `everyMs` apart. */
async function pollUntil<T>(fn: () => T, done: (v: T) => boolean, tries = 100, everyMs = 20): Promise<T> {
  let v = fn();
  for (let i = 0; i < tries && !done(v); i++) {
    await sleep(everyMs);
    v = fn();
  }
  return v;
}

function requireLookup(t: Test): SocketOwnerLookup | undefined {
  if (!assertPresent(t, addon, linux)) return undefined;
  const lookup = nativeOwnerLookup();
  t.type(lookup, 'function', 'the native lookup is available on Linux with the addon built');
  return lookup;
}

const CASES = [
  { name: 'IPv4', listen: '127.0.0.1', connect: '127.0.0.1', mapped: false },
  { name: 'IPv6 ::1', listen: '::1', connect: '::1', mapped: false },
  { name: 'dual-stack listener, IPv4 client (::ffff:127.0.0.1)', listen: '::', connect: '127.0.0.1', mapped: true },
];

for (const c of CASES) {
  t.test(`${c.name}: finds the client's socket: our uid, its /proc inode, ESTABLISHED`, needs(addon, linux), async (t) => {
    const lookup = requireLookup(t);
    if (!lookup) return;
    const p = await connectPair(c.listen, c.connect);
    t.teardown(() => p.close());
    if (c.mapped) t.equal(p.accepted.remoteAddress, '::ffff:127.0.0.1', 'the server sees an IPv4-mapped address');

    const owner = lookupClient(lookup, p.accepted);
    // The client's own view of its socket, for the independent /proc check.
    const proc = procTcpEntry(p.client.localAddress!, p.client.localPort!, p.client.remoteAddress!, p.client.remotePort!);
    t.ok(proc, 'the client socket is in /proc/net/tcp*');
    t.equal(owner?.uid, myUid, 'uid is ours');
    t.ok((owner?.inode ?? 0) > 0, 'a non-zero inode');
    t.equal(owner?.inode, proc?.inode, 'the inode /proc/net/tcp* shows for the client socket');
    t.equal(owner?.state, TCP_ESTABLISHED, 'state 1 (ESTABLISHED)');
    t.equal(owner?.pid, undefined, 'no pid on Linux (found from the inode, in TypeScript)');

    // The same connection from the other end is a different socket.
    const serverEnd = lookup(family(p.client), p.client.remoteAddress!, p.client.remotePort!, p.client.localAddress!, p.client.localPort!);
    t.ok(serverEnd && serverEnd.inode > 0 && serverEnd.inode !== owner?.inode, "the server's end has its own inode");
  });
}

t.test('a connection that is gone: undefined', needs(addon, linux), async (t) => {
  const lookup = requireLookup(t);
  if (!lookup) return;
  const p = await connectPair('127.0.0.1', '127.0.0.1');
  const q = {
    local: p.accepted.remoteAddress!,
    lport: p.accepted.remotePort!,
    remote: p.accepted.localAddress!,
    rport: p.accepted.localPort!,
  };
  // The server closes first, so the TIME_WAIT stays on the server's side and
  // the client's socket goes through CLOSE_WAIT and LAST_ACK to nothing.
  p.accepted.end();
  await once(p.client, 'end');
  p.client.end();
  await once(p.client, 'close');
  const after = await pollUntil(
    () => lookup(4, q.local, q.lport, q.remote, q.rport),
    (v) => v === undefined,
  );
  t.equal(after, undefined, 'no socket: undefined');
  t.equal(procTcpEntry(q.local, q.lport, q.remote, q.rport), undefined, '/proc agrees');
  await p.close();
});

t.test('a connection the client closed first: TIME_WAIT, inode 0, uid 0 (which is not root)', needs(addon, linux), async (t) => {
  const lookup = requireLookup(t);
  if (!lookup) return;
  const p = await connectPair('127.0.0.1', '127.0.0.1');
  const q = {
    local: p.accepted.remoteAddress!,
    lport: p.accepted.remotePort!,
    remote: p.accepted.localAddress!,
    rport: p.accepted.localPort!,
  };
  const closed = Promise.all([once(p.client, 'close'), once(p.accepted, 'close')]);
  p.client.end(); // the server's socket ends itself when it reads the FIN (allowHalfOpen is false)
  await closed;
  const after = await pollUntil(
    () => lookup(4, q.local, q.lport, q.remote, q.rport),
    (v) => v?.state === TCP_TIME_WAIT,
  );
  t.equal(after?.state, TCP_TIME_WAIT, 'state 6 (TIME_WAIT)');
  t.equal(after?.inode, 0, 'inode 0: no process holds it');
  t.equal(after?.uid, 0, 'uid 0: the kernel does not keep the owner of a TIME_WAIT socket');
  t.equal(procTcpEntry(q.local, q.lport, q.remote, q.rport)?.inode, 0, '/proc agrees: inode 0');
  await p.close();
});

t.test(
  'LISTEN lookups: the listener on 127.0.0.1, ::1, and a dual-stack :: one found through 127.0.0.1',
  needs(addon, linux),
  async (t) => {
    const lookup = requireLookup(t);
    if (!lookup) return;
    for (const [host, fam, wildcard, asked] of [
      ['127.0.0.1', 4, '0.0.0.0', '127.0.0.1'],
      ['::1', 6, '::', '::1'],
      ['::', 4, '0.0.0.0', '127.0.0.1'],
    ] as const) {
      const server = net.createServer();
      server.listen(0, host);
      await once(server, 'listening');
      const port = (server.address() as net.AddressInfo).port;
      const owner = lookup(fam, asked, port, wildcard, 0);
      const proc = procTcpEntry(host, port, host.includes(':') ? '::' : '0.0.0.0', 0);
      t.equal(owner?.state, TCP_LISTEN, `${host}: state 10 (LISTEN)`);
      t.equal(owner?.uid, myUid, `${host}: our uid`);
      t.equal(owner?.inode, proc?.inode, `${host}: the listener's /proc inode`);
      t.ok((owner?.inode ?? 0) > 0, `${host}: non-zero`);
      server.close();
      await once(server, 'close');
      t.equal(lookup(fam, asked, port, wildcard, 0), undefined, `${host}: nothing once it is closed`);
    }
  },
);

t.test('bad input: EINVAL, one line, nothing looked up', needs(addon, linux), async (t) => {
  const lookup = requireLookup(t);
  if (!lookup) return;
  const bad: Array<[string, () => unknown]> = [
    ['not an address', () => lookup(4, 'localhost', 1, '127.0.0.1', 2)],
    ['an IPv6 address as family 4', () => lookup(4, '::1', 1, '::1', 2)],
    ['family 5', () => lookup(5 as 4, '127.0.0.1', 1, '127.0.0.1', 2)],
    ['port 65536', () => lookup(4, '127.0.0.1', 65536, '127.0.0.1', 2)],
    ['a fractional port', () => lookup(4, '127.0.0.1', 1.5, '127.0.0.1', 2)],
    ['local port 0', () => lookup(4, '127.0.0.1', 0, '127.0.0.1', 2)],
    ['remote port 0 on a real address', () => lookup(4, '127.0.0.1', 1, '127.0.0.1', 0)],
    ['a mapped address paired with a plain IPv6 one', () => lookup(6, '::ffff:127.0.0.1', 1, '::1', 2)],
    ['an address with a NUL', () => lookup(4, '127.0.0.1\0', 1, '127.0.0.1', 2)],
    ['a long string', () => lookup(4, '1'.repeat(100), 1, '127.0.0.1', 2)],
  ];
  for (const [what, call] of bad) {
    try {
      call();
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.equal((err as { code?: string }).code, 'EINVAL', `${what}: EINVAL`);
      t.notMatch((err as Error).message, /\n/, `${what}: a one-line message`);
    }
  }
});

t.test('no descriptor leaks: 500 lookups (found, missing, invalid) keep the fd count', needs(addon, linux), async (t) => {
  const lookup = requireLookup(t);
  if (!lookup) return;
  const p = await connectPair('127.0.0.1', '127.0.0.1');
  t.teardown(() => p.close());
  lookupClient(lookup, p.accepted); // the addon's one netlink socket is open from here on
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  let found = 0;
  for (let i = 0; i < 500; i++) {
    if (lookupClient(lookup, p.accepted)?.uid === myUid) found++;
    lookup(4, '127.0.0.1', 1, '127.0.0.1', 2);
    try {
      lookup(4, 'nope', 1, '127.0.0.1', 2);
    } catch {
      // EINVAL, tested above
    }
  }
  t.equal(found, 500, 'every lookup found the client');
  t.equal(fds(), before, 'the same number of open descriptors');
});

t.test('lookups from worker threads and the main thread at once all find the right socket', needs(addon, linux), async (t) => {
  const lookup = requireLookup(t);
  if (!lookup) return;
  const p = await connectPair('127.0.0.1', '127.0.0.1');
  t.teardown(() => p.close());
  const s = p.accepted;
  const expected = lookupClient(lookup, s);
  const args = [4, s.remoteAddress, s.remotePort, s.localAddress, s.localPort];
  // Each worker loads the addon itself and shares the process's one netlink socket.
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const addon = require(workerData.file);
    let same = 0;
    for (let i = 0; i < workerData.n; i++) if (addon.socketOwner(...workerData.args)?.inode === workerData.inode) same++;
    parentPort.postMessage(same);`;
  const file = join(packageRoot()!, 'enclave-addon', 'build', 'Release', 'credport_enclave.node');
  const n = 2000;
  const workers = [0, 1, 2].map(() => new Worker(code, { eval: true, workerData: { file, n, args, inode: expected?.inode } }));
  const results = workers.map((w) => once(w, 'message') as Promise<[number]>);
  let mainSame = 0;
  for (let i = 0; i < n; i++) if (lookupClient(lookup, s)?.inode === expected?.inode) mainSame++;
  const counts = (await Promise.all(results)).map(([c]) => c);
  await Promise.all(workers.map((w) => w.terminate()));
  t.ok((expected?.inode ?? 0) > 0, 'a real inode to compare with');
  t.same(counts, [n, n, n], 'every worker lookup found the same socket');
  t.equal(mainSame, n, 'and every main-thread lookup');
});

// ---- A real second user ------------------------------------------------------

const root: Tool = {
  name: 'root',
  present: myUid === 0,
  why: 'not root: the second-user tests create a user with useradd (run the tests as root, as CI does)',
};
const useradd = tool(
  'useradd and userdel (passwd)',
  () => spawnSync('useradd', ['--help'], { stdio: 'ignore' }).status === 0,
  'apt-get install passwd',
);

interface OtherUser {
  name: string;
  uid: number;
  gid: number;
}

function createUser(t: Test): OtherUser | undefined {
  const name = `credport-peer-test-${randomBytes(4).toString('hex')}`;
  const made = spawnSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', name], { encoding: 'utf8' });
  if (made.status !== 0) {
    t.fail(`useradd ${name} failed: ${made.stderr.trim()}`);
    return undefined;
  }
  t.teardown(() => {
    const gone = spawnSync('userdel', [name], { encoding: 'utf8' });
    if (gone.status !== 0) t.fail(`userdel ${name} failed: ${gone.stderr.trim()}`);
  });
  const id = (flag: string): number => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  return { name, uid: id('-u'), gid: id('-g') };
}

/** A node process of `user`, running `script`; it exits when its stdin closes. */
function runAs(t: Test, user: OtherUser, script: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['-e', script, ...args], {
    uid: user.uid,
    gid: user.gid,
    cwd: '/',
    env: { PATH: '/usr/bin:/bin' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  return child;
}

/** The first line the child prints, or '' if none comes within 10 s. */
async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => lines.close(), 10_000);
  try {
    for await (const line of lines) return line;
    return '';
  } finally {
    clearTimeout(timer);
  }
}

const HOLD_CONNECTION = `
const s = require('node:net').connect(Number(process.argv[1]), '127.0.0.1', () => console.log(s.localPort));
s.on('error', (e) => { console.error(e.message); process.exit(2); });
process.stdin.on('end', () => { s.destroy(); process.exit(0); });
process.stdin.resume();`;

const LISTEN = `
const srv = require('node:net').createServer().listen(0, '127.0.0.1', () => console.log(srv.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`;

t.test('a client run by a real second user: the lookup returns that user\u2019s uid', needs(addon, linux, root, useradd), async (t) => {
  if (!assertPresent(t, root, useradd)) return;
  const lookup = requireLookup(t);
  if (!lookup) return;
  const user = createUser(t);
  if (!user) return;
  t.not(user.uid, myUid, 'a different uid');

  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const child = runAs(t, user, HOLD_CONNECTION, [String((server.address() as net.AddressInfo).port)]);
  const [sock] = await accepted;
  t.teardown(() => sock.destroy());
  t.equal(Number(await firstLine(child)), sock.remotePort, "the child's socket is the one accepted");

  const owner = lookupClient(lookup, sock);
  const proc = procTcpEntry(sock.remoteAddress!, sock.remotePort!, sock.localAddress!, sock.localPort!);
  t.equal(owner?.uid, user.uid, `uid ${user.uid} (${user.name})`);
  t.equal(proc?.uid, user.uid, '/proc agrees on the uid');
  t.equal(owner?.inode, proc?.inode, '/proc agrees on the inode');
  t.equal(owner?.state, TCP_ESTABLISHED, 'ESTABLISHED');

  child.stdin!.end();
  await once(child, 'exit');
  t.equal(child.exitCode, 0, 'the client exited cleanly');
});

t.test('a port squatted by a real second user: the LISTEN lookup names that user', needs(addon, linux, root, useradd), async (t) => {
  if (!assertPresent(t, root, useradd)) return;
  const lookup = requireLookup(t);
  if (!lookup) return;
  const user = createUser(t);
  if (!user) return;
  const child = runAs(t, user, LISTEN, []);
  const port = Number(await firstLine(child));
  t.ok(port > 0, 'the other user listens');
  const owner = lookup(4, '127.0.0.1', port, '0.0.0.0', 0);
  t.equal(owner?.state, TCP_LISTEN, 'LISTEN');
  t.equal(owner?.uid, user.uid, `owned by uid ${user.uid}, not us`);
  t.equal(owner?.inode, procTcpEntry('127.0.0.1', port, '0.0.0.0', 0)?.inode, '/proc agrees on the inode');
  child.stdin!.end();
  await once(child, 'exit');
});
