/**
 * An idle daemon sleeps: once it has served and its clients have gone, no timer of its own fires more
 * often than once a second and no event-loop monitor runs (the figures themselves are the benchmark's:
 * npm run bench -- --only idle). And the check that cuts off slow clients exists only while a
 * connection is open, yet still cuts them off.
 */
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import perfHooks from 'node:perf_hooks';
import t from 'tap';
import { guardSlowClients } from '../daemon/server/slow-clients.js';
import { startStack } from './helpers/stack.js';

interface Recorded {
  kind: 'timeout' | 'interval';
  ms: number;
  active: boolean;
  stack: string;
}

/** Records every timer made through the globals (as the daemon's code makes them) and whether it is still pending. */
function recordTimers(): { list: Recorded[]; restore(): void } {
  const list: Recorded[] = [];
  const byHandle = new WeakMap<object, Recorded>();
  const orig = { setTimeout, setInterval, clearTimeout, clearInterval };
  const g = globalThis as unknown as Record<string, unknown>;
  g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const r: Recorded = { kind: 'timeout', ms: ms ?? 0, active: true, stack: new Error().stack ?? '' };
    const h = orig.setTimeout(
      (...a: unknown[]) => {
        r.active = false;
        fn(...a);
      },
      ms,
      ...args,
    );
    list.push(r);
    byHandle.set(h, r);
    return h;
  };
  g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const r: Recorded = { kind: 'interval', ms: ms ?? 0, active: true, stack: new Error().stack ?? '' };
    const h = orig.setInterval(fn, ms, ...args);
    list.push(r);
    byHandle.set(h, r);
    return h;
  };
  const clear = (h: unknown) => {
    const r = h && typeof h === 'object' ? byHandle.get(h) : undefined;
    if (r) r.active = false;
  };
  g.clearTimeout = (h: NodeJS.Timeout | undefined) => {
    clear(h);
    orig.clearTimeout(h);
  };
  g.clearInterval = (h: NodeJS.Timeout | undefined) => {
    clear(h);
    orig.clearInterval(h);
  };
  return { list, restore: () => Object.assign(g, orig) };
}

/** The daemon's own timers (its code under daemon/, compiled or source-mapped), not the emulator's or tap's. */
const daemonTimers = (list: Recorded[]) => list.filter((r) => /[/\\](?:dist[/\\])?daemon[/\\]/.test(r.stack));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('an idle daemon has no timer below 1 s and no event-loop monitor', async (t) => {
  const timers = recordTimers();
  t.teardown(() => timers.restore());
  let monitors = 0;
  const realMonitor = perfHooks.monitorEventLoopDelay;
  (perfHooks as { monitorEventLoopDelay: typeof realMonitor }).monitorEventLoopDelay = (...a) => {
    monitors++;
    return realMonitor(...a);
  };
  t.teardown(() => void ((perfHooks as { monitorEventLoopDelay: typeof realMonitor }).monitorEventLoopDelay = realMonitor));

  const stack = await startStack();
  t.teardown(() => stack.close());
  const d = stack.daemon!;
  // Served once, through a connection that is then closed: the daemon has done what it does, then idles.
  const r = await fetch(`${d.url}/v1/credentials`, { headers: { authorization: stack.token(), connection: 'close' } });
  t.equal(r.status, 200, 'credentials were served');
  const m = await fetch(`${d.url}/metrics`, { headers: { connection: 'close' } });
  const text = await m.text();
  t.match(text, /^credport_process_resident_memory_bytes \d+/m, 'process figures are still in /metrics');
  t.match(text, /^credport_process_cpu_user_seconds_total \d/m, 'CPU seconds too');
  t.notMatch(text, /eventloop_lag/, 'no event-loop lag series, whose monitor would wake the daemon');
  t.equal(monitors, 0, 'no event-loop delay monitor was started');

  // Until the server has seen both connections close (bounded).
  for (let i = 0; i < 100 && d.server.server.listenerCount('connection') >= 0; i++) {
    const open = await new Promise<number>((res) => d.server.server.getConnections((_e, n) => res(n)));
    if (open === 0) break;
    await sleep(50);
  }
  const pending = daemonTimers(timers.list).filter((x) => x.active);
  const fast = pending.filter((x) => x.ms < 1000);
  t.same(
    fast.map((x) => `${x.kind} ${x.ms} ms at ${x.stack.split('\n')[2]?.trim()}`),
    [],
    'no pending daemon timer is shorter than 1 s',
  );
  t.ok(pending.length > 0 || daemonTimers(timers.list).length > 0, "the recorder did see the daemon's timers (refresh, watchdog)");
  const interval = (d.server.server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval;
  t.ok(interval >= 1000, `node's own connection check is no more often than once a second (${interval} ms)`);
});

function trickle(port: number, text: string): { sock: Socket; closed: Promise<{ byServer: boolean; reply: string }>; stop(): void } {
  const sock = connect(port, '127.0.0.1');
  let sent = 0;
  let reply = '';
  const timer = setInterval(() => {
    if (sent < text.length && sock.writable) sock.write(text[sent++]!);
  }, 200);
  let byUs = false;
  const closed = new Promise<{ byServer: boolean; reply: string }>((resolve) => {
    sock.on('data', (b) => (reply += b.toString('latin1')));
    sock.on('end', () => resolve({ byServer: !byUs, reply }));
    sock.on('close', () => resolve({ byServer: !byUs, reply }));
    sock.on('error', () => undefined);
  });
  return {
    sock,
    closed,
    stop() {
      byUs = true;
      clearInterval(timer);
      sock.destroy();
    },
  };
}

t.test('slow clients: cut off while trickling; the check runs only while connections are open', async (t) => {
  const server = createServer((req, res) => {
    res.end('ok');
    guard.onRequest(req, res);
  });
  server.on('clientError', (_err, socket) => socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n'));
  const guard = guardSlowClients(server, { headersMs: 2000, requestMs: 2000 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  t.notOk(guard.armed, 'no check before any connection');

  // Headers that never end: a byte every 200 ms keeps the socket busy but never completes them.
  const slow = trickle(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(10_000)}`);
  const give = setTimeout(() => slow.stop(), 15_000);
  const result = await slow.closed;
  clearTimeout(give);
  t.ok(result.byServer, 'the server closed the trickling connection');
  t.match(result.reply, /^HTTP\/1\.1 408 /, 'after answering 408 through the clientError handler');
  slow.stop();

  // A normal keep-alive client is served and, once gone, leaves no check behind.
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  t.ok(guard.armed, 'the check runs while a connection is open');
  sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const answer = await new Promise<string>((r) => sock.once('data', (b) => r(b.toString())));
  t.match(answer, /^HTTP\/1\.1 200 /, 'a normal request is answered');
  sock.destroy();
  for (let i = 0; i < 100 && guard.watching > 0; i++) await sleep(20);
  t.equal(guard.watching, 0, 'the closed connection is no longer watched');
  t.notOk(guard.armed, 'and no check is left running');
});
