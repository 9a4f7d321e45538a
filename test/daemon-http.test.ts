/**
 * cli/daemon-http.ts: the CLI's one GET to the daemon without node:http. The parser against answers
 * made by hand, and the whole exchange against real loopback servers: node's own http server (how
 * the daemon answers, chunked too), one that keeps the connection open, one that floods, one that
 * never answers and one that hangs up.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { DaemonHttpError, getOnSocket, parseReply, requestBytes } from '../daemon/cli/daemon-http.js';

const reply = (text: string, ended = false) => parseReply(Buffer.from(text, 'latin1'), ended);
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof DaemonHttpError ? err.code : `not a DaemonHttpError: ${(err as Error).message}`;
  }
  return undefined;
};

t.test('parseReply: Content-Length, chunked, or to the end of the stream', async (t) => {
  const ok = reply('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  t.same(ok && { status: ok.status, body: ok.body.toString() }, { status: 200, body: '{}' });
  t.equal(reply('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}'), undefined, 'short of its length: more is needed');
  t.equal(reply('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra')?.body.toString(), '{}', 'what follows the length is not the body');
  t.equal(reply('HTTP/1.1 200 OK\r\nContent-Len'), undefined, 'a head not yet complete');
  const chunked = 'HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n';
  const c = reply(chunked);
  t.same(c && { status: c.status, body: c.body.toString() }, { status: 403, body: '{"a":1}' });
  t.equal(reply(chunked.slice(0, -7)), undefined, 'before the last chunk: more is needed');
  t.equal(reply('HTTP/1.0 200 OK\r\n\r\nto the end'), undefined, 'no length: read until the daemon closes');
  t.equal(reply('HTTP/1.0 200 OK\r\n\r\nto the end', true)?.body.toString(), 'to the end');
  t.equal(reply('HTTP/1.1 204 No Content\r\n\r\n')?.body.length, 0, '204: no body, whatever follows');
  t.equal(reply('HTTP/1.1 200 OK\r\nContent-Length:\t 2 \r\n\r\n{}')?.body.toString(), '{}', 'spaces and tabs around a value');
});

t.test('parseReply: anything malformed is an error, never a guess', async (t) => {
  const cases: Array<[string, string, boolean?]> = [
    ['not HTTP', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'],
    ['HTTP/2 status line', 'HTTP/2 200\r\n\r\n'],
    ['status out of range', 'HTTP/1.1 099 Odd\r\n\r\n'],
    ['header without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n'],
    ['header name with a space', 'HTTP/1.1 200 OK\r\nContent Length: 2\r\n\r\n{}'],
    ['non-numeric length', 'HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n{}'],
    ['two different lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'],
    ['length and chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['gzip transfer coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n'],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['chunk without its CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n'],
    ['empty answer at the end', '', true],
    ['ends inside the head', 'HTTP/1.1 200 OK\r\nContent-Le', true],
    ['ends short of its length', 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}', true],
    ['ends inside a chunked body', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n', true],
    ['head over 16 KiB', `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17 * 1024)}`],
    ['an interim answer', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'],
    ['a bare LF hiding a header', 'HTTP/1.1 200 OK\r\nX: a\nContent-Length: 2\r\n\r\n{}'],
    ['a NUL in a value', 'HTTP/1.1 200 OK\r\nX: a\u0000b\r\n\r\n'],
    ['a vertical tab is not whitespace', 'HTTP/1.1 200 OK\r\nContent-Length: \u000b2\r\n\r\n{}'],
    ['nor is a no-break space in a chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\u00a02\r\n{}\r\n0\r\n\r\n'],
  ];
  for (const [what, text, ended] of cases)
    t.equal(
      code(() => reply(text, ended)),
      'EBADREPLY',
      what,
    );
  t.equal(
    code(() => parseReply(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n'), false, 4096)),
    'EBADREPLY',
    'a declared length over the cap: refused before the body comes',
  );
});

t.test('requestBytes: one GET that asks to close; nothing that could split the request', async (t) => {
  t.equal(
    requestBytes('/v1/credentials', '127.0.0.1:9911', { authorization: 'tok', host: 'evil', Connection: 'keep-alive' }).toString(),
    'GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1:9911\r\nConnection: close\r\nauthorization: tok\r\n\r\n',
    'Host and Connection are the request own',
  );
  t.throws(() => requestBytes('/x', 'h', { authorization: 'tok\r\nX-Injected: 1' }), TypeError, 'CR LF in a value');
  t.throws(() => requestBytes('/x', 'h', { 'bad name': 'v' }), TypeError, 'a space in a name');
  t.throws(() => requestBytes('/x HTTP/1.1\r\nX: 1', 'h', {}), TypeError, 'a path with a space or CR LF');
  t.throws(() => requestBytes('/x', 'h\r\nX: 1', {}), TypeError, 'CR LF in the host');
  t.throws(() => requestBytes('/x', 'h', { a: undefined as unknown as string }), TypeError, 'a value that is not a string');
});

/** A loopback server of `kind`, and a socket connected to it. */
async function exchange(
  t: Test,
  onSocket: (s: Socket) => void,
  limits: { maxBytes: number; timeoutMs: number; closeFirst?: boolean } = { maxBytes: 1024 * 1024, timeoutMs: 3000 },
) {
  // Reading (and dropping) what the client sends lets the server see the client's close.
  // A client that hangs up first makes the server's writes fail: expected here.
  const server: Server = createServer((s) => {
    s.on('error', () => {});
    s.resume();
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise((r) => socket.once('connect', r));
  if (limits.closeFirst) socket.destroy();
  return getOnSocket(
    socket,
    { path: '/health', host: `127.0.0.1:${port}`, headers: {} },
    { maxBytes: limits.maxBytes, deadline: Date.now() + limits.timeoutMs },
  );
}

const failure = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof DaemonHttpError ? err.code : `not a DaemonHttpError: ${(err as Error).message}`;
  }
};

t.test("node's http server, as the daemon answers: a Content-Length body and a chunked one", async (t) => {
  const server: HttpServer = createHttpServer((req, res) => {
    if (req.url === '/chunked') {
      res.write('{"part":');
      setTimeout(() => res.end('2}'), 20);
    } else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url, close: req.headers.connection }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  for (const path of ['/health', '/chunked']) {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const r = await getOnSocket(socket, { path, host: `127.0.0.1:${port}`, headers: {} }, { maxBytes: 4096, deadline: Date.now() + 3000 });
    t.equal(r.status, 200);
    t.same(JSON.parse(r.body.toString()), path === '/health' ? { url: '/health', close: 'close' } : { part: 2 }, path);
    t.ok(socket.destroyed, `${path}: the socket is let go`);
  }
});

t.test('a server that keeps the connection open: the answer ends at its length, not at a close', async (t) => {
  const r = await exchange(t, (s) => s.write('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}'));
  t.equal(r.body.toString(), '{}');
});

t.test('a flood, silence and a hang-up are errors within the deadline', async (t) => {
  t.equal(
    await failure(
      exchange(
        t,
        (s) => {
          s.write('HTTP/1.1 200 OK\r\n\r\n');
          const chunk = Buffer.alloc(64 * 1024, 0x61);
          for (let i = 0; i < 64 && s.writable; i++) s.write(chunk); // 4 MiB at most, bounded
        },
        { maxBytes: 256 * 1024, timeoutMs: 3000 },
      ),
    ),
    'EBADREPLY',
    'more than maxBytes: refused while it streams',
  );
  t.equal(await failure(exchange(t, () => {}, { maxBytes: 1024, timeoutMs: 200 })), 'ETIMEDOUT', 'no answer: the deadline');
  t.equal(await failure(exchange(t, (s) => s.end())), 'EBADREPLY', 'closed without an answer');
  t.equal(
    await failure(exchange(t, () => {}, { maxBytes: 1024, timeoutMs: 60_000, closeFirst: true })),
    'ECONNRESET',
    'a socket closed before the request: at once, not at the deadline',
  );
  // After the request is in: a reset during connect would be connect's error, not the exchange's.
  t.equal(await failure(exchange(t, (s) => s.once('data', () => s.resetAndDestroy()))), 'ECONNRESET', 'reset');
});
