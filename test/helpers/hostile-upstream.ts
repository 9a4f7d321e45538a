/**
 * A hostile upstream on loopback, for every provider (STS's XML protocol, Roles Anywhere's JSON, and
 * whatever comes next): it sits in front of a real upstream (the emulator) and, by mode, passes
 * requests through, stalls after its headers, drips a byte at a time, floods, lies about the date or
 * the credentials' Expiration, answers with codes and messages built to break logs and metrics, or
 * echoes the request (JWT, signature and session token included) back in its error message.
 *
 * Every request it received is kept (headers and body) so a test can take the secrets the daemon sent
 * and look for them where they must never appear. Every loop here is bounded in count, and close()
 * ends every connection it still holds.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type HostileMode =
  /** Forward to the real upstream, answer as it does. */
  | { kind: 'pass' }
  /** 200, headers announcing a body, `bodyBytes` of it, then silence with the socket open. */
  | { kind: 'stall'; bodyBytes: number }
  /** 200, then one byte every `everyMs` (at most `maxBytes`), never finishing. */
  | { kind: 'drip'; everyMs: number; maxBytes?: number }
  /** 200 and a body streamed as fast as the client takes it, up to `maxBytes` (the test's bound). */
  | { kind: 'flood'; maxBytes: number }
  /** The real answer with its Date header replaced. */
  | { kind: 'date'; date: string }
  /** The real answer with the credentials' Expiration replaced (an ISO string, e.g. 9999-12-31T23:59:59Z). */
  | { kind: 'expiration'; value: string }
  /** An error answer in the request's protocol, with this status, code and message, verbatim. */
  | { kind: 'error'; status: number; code: string; message: string }
  /** An error answer whose message is the whole request: method, path, headers and body. */
  | { kind: 'echo'; status?: number };

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface HostileUpstream {
  readonly url: string;
  /** Where `pass` (and the modes that rewrite a real answer) forward to. */
  target: string | undefined;
  mode: HostileMode;
  readonly received: ReceivedRequest[];
  /** Body bytes written to each answer, in order (flood: how much went out before the client left). */
  readonly bodyBytesSent: number[];
  close(): Promise<void>;
}

/** Roles Anywhere's CreateSession is POST /sessions (REST-JSON); everything else here is STS (query/XML). */
const isRolesAnywhere = (path: string): boolean => path.split('?')[0] === '/sessions';

const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function errorAnswer(path: string, _status: number, code: string, message: string): { headers: Record<string, string>; body: string } {
  if (isRolesAnywhere(path)) {
    // The code in the body only: a header cannot carry the newlines and escapes the tests send.
    return { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ __type: code, message }) };
  }
  const body = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>`;
  return { headers: { 'content-type': 'text/xml' }, body };
}

function rewriteExpiration(body: string, value: string): string {
  return body
    .replace(/<Expiration>[^<]*<\/Expiration>/g, `<Expiration>${value}</Expiration>`)
    .replace(/"expiration"\s*:\s*"[^"]*"/g, `"expiration":"${value}"`);
}

const MAX_FLOOD_CHUNKS = 1_000_000;
const CHUNK = Buffer.alloc(64 * 1024, 0x41);

export async function startHostileUpstream(initial: HostileMode = { kind: 'pass' }, target?: string): Promise<HostileUpstream> {
  const received: ReceivedRequest[] = [];
  const bodyBytesSent: number[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const state: { mode: HostileMode; target: string | undefined } = { mode: initial, target };

  const forward = (req: ReceivedRequest): Promise<{ status: number; headers: Record<string, string>; body: string }> =>
    new Promise((resolve, reject) => {
      if (state.target === undefined) {
        reject(new Error('hostile upstream: no target to forward to'));
        return;
      }
      // The Host header goes through unchanged: the daemon signed it, and the emulator checks signatures.
      const out = httpRequest(new URL(req.path, state.target), { method: req.method, headers: req.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v;
          resolve({ status: res.statusCode ?? 502, headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      out.on('error', reject);
      out.end(req.body);
    });

  const answer = (res: ServerResponse, status: number, headers: Record<string, string>, body: string): void => {
    const { 'content-length': _cl, 'transfer-encoding': _te, connection: _c, ...rest } = headers;
    const bytes = Buffer.from(body, 'utf8');
    res.writeHead(status, { ...rest, 'content-length': bytes.length });
    res.end(bytes);
    bodyBytesSent.push(bytes.length);
  };

  const flood = async (res: ServerResponse, maxBytes: number): Promise<void> => {
    res.writeHead(200, { 'content-type': 'text/xml' });
    let sent = 0;
    let closed = false;
    res.on('close', () => void (closed = true));
    for (let i = 0; i < MAX_FLOOD_CHUNKS && !closed && sent < maxBytes; i++) {
      sent += CHUNK.length;
      if (!res.write(CHUNK)) {
        await new Promise<void>((r) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    bodyBytesSent.push(sent);
    if (!closed) res.end();
  };

  const handle = async (incoming: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of incoming) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(incoming.headers)) if (typeof v === 'string') headers[k] = v;
    const req: ReceivedRequest = {
      method: incoming.method ?? 'GET',
      path: incoming.url ?? '/',
      headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    received.push(req);
    const mode = state.mode;
    switch (mode.kind) {
      case 'pass': {
        const up = await forward(req);
        answer(res, up.status, up.headers, up.body);
        return;
      }
      case 'date': {
        const up = await forward(req);
        answer(res, up.status, { ...up.headers, date: mode.date }, up.body);
        return;
      }
      case 'expiration': {
        const up = await forward(req);
        answer(res, up.status, up.headers, rewriteExpiration(up.body, mode.value));
        return;
      }
      case 'stall':
        res.writeHead(200, { 'content-type': 'text/xml', 'content-length': mode.bodyBytes + 100_000 });
        res.write(Buffer.alloc(mode.bodyBytes, 0x3c));
        bodyBytesSent.push(mode.bodyBytes);
        return; // and never another byte
      case 'drip': {
        // Chunked, no length: nothing announces that the body will never end.
        res.writeHead(200, { 'content-type': 'text/xml' });
        const max = mode.maxBytes ?? 10_000;
        let sent = 0;
        const t = setInterval(() => {
          if (res.destroyed || sent >= max) {
            clearInterval(t);
            timers.delete(t);
            return;
          }
          res.write('<');
          sent++;
        }, mode.everyMs);
        timers.add(t);
        res.on('close', () => {
          clearInterval(t);
          timers.delete(t);
          bodyBytesSent.push(sent);
        });
        return;
      }
      case 'flood':
        await flood(res, mode.maxBytes);
        return;
      case 'error': {
        const e = errorAnswer(req.path, mode.status, mode.code, mode.message);
        answer(res, mode.status, e.headers, e.body);
        return;
      }
      case 'echo': {
        const text = `could not process ${req.method} ${req.path} ${JSON.stringify(req.headers)} ${req.body}`;
        const e = errorAnswer(req.path, mode.status ?? 400, isRolesAnywhere(req.path) ? 'ValidationException' : 'ValidationError', text);
        answer(res, mode.status ?? 400, e.headers, e.body);
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) answer(res, 502, { 'content-type': 'text/plain' }, 'hostile upstream: forwarding failed');
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get target() {
      return state.target;
    },
    set target(v) {
      state.target = v;
    },
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    received,
    bodyBytesSent,
    async close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
