// Requests that reach the daemon while it starts (daemon.ts, server/held-requests.ts): the socket is bound
// before fastify is built, and fastify waits for the first fetches. Here the first fetch is held at a
// gate in front of the emulator's STS, so every request below certainly arrives in that window; each must
// then get exactly the answer a started daemon gives, another user's included. A request only fastify
// answers does not wait for the fetch, and an upstream that never answers does not keep the daemon from
// starting.
import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { FIRST_FETCH_WAIT_MS, startDaemon, type DaemonOptions } from '../daemon/daemon.js';
import { createLogger } from '../daemon/logging/logger.js';
import { chooseOwnerLookup } from '../daemon/peer/socket-owner.js';
import { freePort } from './helpers/cli.js';
import { startStack } from './helpers/stack.js';

interface Answer {
  status: number;
  body: string;
}

function send(port: number, path: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: { host: `127.0.0.1:${port}`, ...o.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A gate in front of the emulator's STS: requests wait until open(), then go through unchanged. */
interface Gate {
  url: string;
  /** Resolves when the first request has arrived (the daemon's first fetch is in flight). */
  arrived: Promise<void>;
  open(): void;
  close(): Promise<void>;
}

async function stsGate(target: () => string): Promise<Gate> {
  let opened = false;
  const waiting: Array<() => void> = [];
  let arrivedResolve!: () => void;
  const arrived = new Promise<void>((r) => {
    arrivedResolve = r;
  });
  const forward = async (req: IncomingMessage, body: Buffer, res: import('node:http').ServerResponse) => {
    const r = await fetch(target(), {
      method: req.method ?? 'POST',
      headers: { 'content-type': String(req.headers['content-type'] ?? '') },
      body,
    });
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/xml' });
    res.end(Buffer.from(await r.arrayBuffer()));
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      arrivedResolve();
      const go = () => void forward(req, Buffer.concat(chunks), res).catch(() => res.destroy());
      if (opened) go();
      else waiting.push(go);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    arrived,
    open() {
      opened = true;
      for (const go of waiting.splice(0)) go();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Whether something accepts TCP connections on the port, polled every 10 ms for at most 5 s. */
async function bound(port: number): Promise<boolean> {
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * A stack whose STS sits behind a shut gate, and a daemon starting on it (not awaited), stopped after `t`.
 * Resolves once the first fetch waits at the gate and the socket is bound. By default the start waits for
 * the first fetch longer than any test takes: only the gate decides when it settles.
 */
async function startGated(t: Test, more: Partial<DaemonOptions> = {}) {
  let sts = '';
  const gate = await stsGate(() => sts);
  t.teardown(() => gate.close());
  const stack = await startStack({ startDaemon: false, profiles: { default: { sts_endpoint: gate.url } } });
  t.teardown(() => stack.close());
  sts = stack.emulator.stsEndpoint;
  const port = await freePort();
  const starting = startDaemon({
    config: stack.config,
    signer: stack.signer,
    logger: createLogger({ level: 'silent' }),
    listen: { host: '127.0.0.1', port },
    tuning: { maxAttempts: 1 },
    firstFetchWaitMs: 120_000,
    ...more,
  });
  t.teardown(() => starting.then((d) => d.close()));
  await gate.arrived;
  // The first fetch starts before the socket is bound: poll (TCP only, no request) until it is.
  t.ok(await bound(port), 'the socket accepts connections while the first fetch waits');
  return { gate, stack, port, starting };
}

t.test('requests sent while the first fetch is in flight get the answers of a started daemon', async (t) => {
  // Every request below comes on its own connection, which the daemon holds and starts a peer lookup
  // for: the fifth lookup says all five are waiting (the fast path cannot answer any of them yet).
  const real = chooseOwnerLookup().lookup;
  let lookups = 0;
  const held = deferred();
  const { gate, stack, port, starting } = await startGated(t, {
    peerLookup: (tuple) => {
      if (++lookups === 5) held.resolve();
      return real(tuple);
    },
  });
  const token = stack.token();
  const answers = Promise.all([
    send(port, '/v1/credentials', { headers: { authorization: token } }),
    send(port, '/health'),
    send(port, '/no/such/path'),
    send(port, '/v1/credentials', { headers: { authorization: 'not-the-token' } }),
    send(port, '/v1/credentials', { headers: { authorization: token, host: 'evil.example' } }),
  ]);
  await held.promise;
  gate.open();
  const [creds, health, missing, badToken, badHost] = await answers;
  await starting;

  t.equal(creds.status, 200, 'credentials: 200');
  const body = JSON.parse(creds.body) as { AccessKeyId: string; SecretAccessKey: string; Token: string; Expiration: string };
  const issued = stack.emulator.issued(body.AccessKeyId);
  t.ok(issued, 'credentials: the emulator issued them');
  t.equal(body.SecretAccessKey, issued?.secretAccessKey, 'credentials: the secret the emulator minted');
  t.equal(body.Token, issued?.sessionToken, 'credentials: the session token the emulator minted');
  t.equal(health.status, 200, '/health: 200');
  t.equal(JSON.parse(health.body).status, 'ok', '/health: ok, the profile has credentials');
  t.equal(missing.status, 404, 'an unknown path: 404');
  t.equal(JSON.parse(missing.body).Code, 'NotFound');
  t.equal(badToken.status, 401, 'a wrong token: 401');
  t.equal(JSON.parse(badToken.body).Code, 'InvalidToken');
  t.equal(badHost.status, 403, 'a foreign Host: 403');
  t.equal(JSON.parse(badHost.body).Code, 'ForbiddenHost');
  t.notMatch(badHost.body + badToken.body + missing.body, /ASIA|SecretAccessKey/, 'no refusal carries credentials');
});

t.test('a request only fastify answers (the IMDS token PUT) does not wait for the first fetch', async (t) => {
  const { gate, port, starting } = await startGated(t);
  // The gate stays shut until the answer is in: the start cannot have waited for the fetch.
  const token = await send(port, '/latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
  t.equal(token.status, 200, 'an IMDS session token: 200 while the first fetch still waits');
  t.ok(token.body.length > 0, 'an IMDS session token: issued');
  await starting;
  gate.open();
});

t.test("another user's request during start-up is refused as later, and nothing is handed out", async (t) => {
  const real = chooseOwnerLookup().lookup;
  const me = process.getuid?.() ?? 0;
  const lookedUp = deferred();
  const audited = { handouts: 0 };
  const { gate, stack, port, starting } = await startGated(t, {
    // Every connection is reported as another user's (uid + 1), as the kernel would for a second user.
    peerLookup: async (tuple) => {
      const owner = await real(tuple);
      lookedUp.resolve();
      return owner && { ...owner, uid: me + 1 };
    },
    audit: { enabled: true, record: () => void audited.handouts++ },
  });
  const refused = send(port, '/v1/credentials', { headers: { authorization: stack.token() } });
  await lookedUp.promise;
  gate.open();
  const r = await refused;
  await starting;
  t.equal(r.status, 403, "another user's credentials request: 403");
  t.equal(JSON.parse(r.body).Code, 'ForbiddenUser');
  t.notMatch(r.body, /ASIA|SecretAccessKey/, 'no credentials in the refusal');
  t.equal(audited.handouts, 0, 'no handout was recorded');
});

t.test('an upstream that never answers does not keep the daemon from starting', { timeout: 30_000 }, async (t) => {
  // The default wait (FIRST_FETCH_WAIT_MS): the start goes on without the fetch once it is over.
  const { gate, stack, port, starting } = await startGated(t, {
    firstFetchWaitMs: FIRST_FETCH_WAIT_MS,
    tuning: { maxAttempts: 1, requestWaitMs: 200 },
  });
  await starting;
  // The gate is still shut: the first fetch has not settled, yet the daemon started and serves /health.
  const health = await send(port, '/health');
  t.equal(health.status, 503, '/health answers while the first fetch still waits: 503, no credentials yet');
  t.equal(JSON.parse(health.body).status, 'degraded');
  const creds = await send(port, '/v1/credentials', { headers: { authorization: stack.token() } });
  t.equal(creds.status, 503, 'credentials: 503 while there are none');
  t.equal(JSON.parse(creds.body).Code, 'CredentialsUnavailable');
  gate.open();
});
