// server/held-requests.ts on a real node:http server and real sockets: what arrives before fastify waits,
// is offered to the fast path again when its peer lookup ends and when the first fetches settle, and goes
// to fastify (here a stand-in router) once it exists, in arrival order; a request only fastify answers,
// or a crowd past the limit, asks for it at once; past the cap a request is refused and its connection
// closed, however it is sent; a client that gives up is forgotten, and a failed start cuts off what waits
// and everything after.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import t, { type Test } from 'tap';
import { HeldRequests } from '../daemon/server/held-requests.js';

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function get(port: number, path = '/'): { answer: Promise<Answer>; abort: () => void } {
  let abort = () => undefined as void;
  const answer = new Promise<Answer>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
    abort = () => req.destroy();
  });
  return { answer, abort };
}

/** Polls `cond` every 5 ms, at most 2 s: for state the server reaches on its own event (a request read). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

interface Rig {
  port: number;
  held: HeldRequests;
  /** The fast path answers only while this is true. */
  fast: { ready: boolean };
  /** Peer lookups started: one per request held. */
  lookups: () => number;
  /** Settles the peer lookup of every connection made so far. */
  finishLookups: () => void;
  routed: string[];
  close: () => Promise<void>;
}

async function rig(t: Test, limit = 16, cap = 1000): Promise<Rig> {
  const fast = { ready: false };
  let lookups = 0;
  let pending: Array<() => void> = [];
  const held = new HeldRequests({
    fastPath: (req, res) => {
      if (!fast.ready) return false;
      res.end(`fast ${req.url}`);
      return true;
    },
    lookup: () =>
      new Promise<void>((resolve) => {
        lookups++;
        pending.push(resolve);
      }),
    limit,
    cap,
  });
  const routed: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => held.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  t.teardown(close);
  return {
    port: (server.address() as AddressInfo).port,
    held,
    fast,
    lookups: () => lookups,
    finishLookups: () => {
      const now = pending;
      pending = [];
      for (const r of now) r();
    },
    routed,
    close,
  };
}

function router(r: Rig): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    r.routed.push(req.url ?? '');
    res.end(`router ${req.url}`);
  };
}

/** Opens the router and reads what each waiting request was answered, in the order they were sent. */
async function openAndRead(r: Rig, waiting: Array<{ answer: Promise<Answer> }>): Promise<string[]> {
  r.held.open(router(r));
  return (await Promise.all(waiting.map((w) => w.answer))).map((a) => a.body);
}

t.test('a held request is answered by the fast path once its peer lookup ends', async (t) => {
  const r = await rig(t);
  let answered = false;
  const a = get(r.port, '/a');
  void a.answer.then(() => {
    answered = true;
  });
  await until(() => r.held.size === 1, 'request /a held');
  // The credentials are ready now, but the peer is not known yet: nothing can answer until the lookup ends.
  r.fast.ready = true;
  await new Promise((res) => setImmediate(res));
  t.notOk(answered, 'still waiting while its lookup runs');
  r.finishLookups();
  t.same(await a.answer.then((x) => x.body), 'fast /a');
  t.equal(r.held.size, 0, 'nothing waits');
  t.same(r.routed, [], 'the router was never asked');
});

t.test('retryAll offers every waiting request to the fast path again', async (t) => {
  const r = await rig(t);
  const b = get(r.port, '/b');
  const c = get(r.port, '/c');
  await until(() => r.held.size === 2, 'two requests held');
  r.finishLookups();
  // The lookups ended while the fast path could not answer (no credentials yet): both still wait.
  await new Promise((res) => setImmediate(res));
  t.equal(r.held.size, 2, 'both still wait after their lookups');
  r.fast.ready = true;
  r.held.retryAll();
  t.same(await Promise.all([b.answer, c.answer]).then((x) => x.map((y) => y.body)), ['fast /b', 'fast /c']);
});

t.test('open() hands what waits to the router in arrival order, the fast path still first', async (t) => {
  const r = await rig(t);
  const d = get(r.port, '/d');
  await until(() => r.held.size === 1, 'request /d held');
  const d2 = get(r.port, '/d2');
  await until(() => r.held.size === 2, 'request /d2 held');
  r.held.open(router(r));
  t.same(
    (await Promise.all([d.answer, d2.answer])).map((a) => a.body),
    ['router /d', 'router /d2'],
  );
  t.same(r.routed, ['/d', '/d2'], 'routed in the order they came');
  t.equal(r.held.size, 0);
  t.equal((await get(r.port, '/e').answer).body, 'router /e', 'a later request the fast path cannot answer: the router');
  r.fast.ready = true;
  t.equal((await get(r.port, '/f').answer).body, 'fast /f', 'the fast path still comes first');
  t.same(r.routed, ['/d', '/d2', '/e']);

  // What waits when open() comes is offered to the fast path before the router.
  const r2 = await rig(t);
  const g = get(r2.port, '/g');
  await until(() => r2.held.size === 1, 'request /g held');
  r2.fast.ready = true;
  r2.held.open(router(r2));
  t.equal((await g.answer).body, 'fast /g', 'a waiting request the fast path can now answer: the fast path');
  t.same(r2.routed, []);
});

t.test('a request the fast path never answers (not a GET) asks for the router at once', async (t) => {
  const r = await rig(t);
  let wanted = false;
  void r.held.routerWanted.then(() => {
    wanted = true;
  });
  const g = get(r.port, '/get');
  await until(() => r.held.size === 1, 'the GET held');
  await new Promise((res) => setImmediate(res));
  t.notOk(wanted, 'a GET waits for the fetches');
  const put = request({ host: '127.0.0.1', port: r.port, path: '/latest/api/token', method: 'PUT', agent: false });
  put.on('error', () => undefined);
  put.end();
  await r.held.routerWanted;
  t.equal(r.held.size, 2, 'the PUT is held too, until the router exists');
  r.held.open(router(r));
  await g.answer;
  t.same(r.routed.sort(), ['/get', '/latest/api/token']);
});

t.test('past the limit, the router is asked for at once, and nothing is refused', async (t) => {
  const r = await rig(t, 2);
  let wanted = false;
  void r.held.routerWanted.then(() => {
    wanted = true;
  });
  const waiting = [get(r.port, '/1')];
  await until(() => r.held.size === 1, 'one request held');
  waiting.push(get(r.port, '/2'));
  await until(() => r.held.size === 2, 'two requests held');
  await new Promise((res) => setImmediate(res));
  t.ok(wanted, 'the second (the limit) asks for the router');
  waiting.push(get(r.port, '/3'));
  await until(() => r.held.size === 3, 'a third is held too, not refused');
  t.same(await openAndRead(r, waiting), ['router /1', 'router /2', 'router /3']);
});

t.test('at the cap, a request is refused with a 503 and its connection closed; what waits is kept', async (t) => {
  const r = await rig(t, 2, 3);
  const waiting = [get(r.port, '/1'), get(r.port, '/2'), get(r.port, '/3')];
  await until(() => r.held.size === 3, 'three requests held');
  const refused = await get(r.port, '/4').answer;
  t.equal(refused.status, 503);
  t.equal(JSON.parse(refused.body).Code, 'TooManyWaiting');
  t.equal(refused.headers['retry-after'], '1');
  t.equal(refused.headers.connection, 'close');
  t.equal(r.held.size, 3, 'the refused request is not held');
  t.same(await openAndRead(r, waiting), ['router /1', 'router /2', 'router /3']);
});

t.test('GETs pipelined on one connection are held only up to the cap; then the connection is cut off', async (t) => {
  const r = await rig(t, 4, 8);
  const sock = connect(r.port, '127.0.0.1');
  const got: Buffer[] = [];
  sock.on('data', (c: Buffer) => got.push(c));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.write('GET /p HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200));
  // A 503 would queue behind the eight held, unanswered: the connection is closed instead.
  await until(() => sock.destroyed, 'the connection cut off');
  await closed;
  t.equal(r.lookups(), 8, 'exactly the cap was held before the cut, of the 200 node parsed');
  t.equal(Buffer.concat(got).length, 0, 'nothing answered on it');
  await until(() => r.held.size === 0, 'what it had waiting is forgotten');
  r.held.open(router(r));
  t.same(r.routed, [], 'the router sees none of it');
  const next = await get(r.port, '/after').answer;
  t.equal(next.body, 'router /after', 'a new connection is served');
});

t.test('a client that gives up is forgotten: the router never sees its request', async (t) => {
  const r = await rig(t);
  const gone = get(r.port, '/gone');
  gone.answer.catch(() => undefined);
  await until(() => r.held.size === 1, 'request /gone held');
  gone.abort();
  await until(() => r.held.size === 0, 'the closed request dropped');
  r.held.open(router(r));
  t.same(r.routed, [], 'nothing was routed');
});

t.test('close() cuts off what waits, and every request after it (a failed start)', async (t) => {
  const r = await rig(t);
  const w = get(r.port, '/w');
  await until(() => r.held.size === 1, 'request /w held');
  r.held.close();
  await t.rejects(w.answer, { code: 'ECONNRESET' }, 'the client sees its connection end without an answer');
  t.equal(r.held.size, 0);
  r.fast.ready = true;
  await t.rejects(
    get(r.port, '/after').answer,
    { code: 'ECONNRESET' },
    'a later request is cut off too, even one the fast path could answer',
  );
  t.equal(r.held.size, 0, 'and not kept');
});
