/**
 * One HTTP/1.1 GET to the daemon over a socket the CLI already holds, proven the daemon's
 * (peer/verify-listener.ts), without node:http: its client, agent and parser cost some 6 ms of CPU in
 * a command that runs once per AWS CLI call (`credport auth`), for one request and one small answer.
 *
 * The request says `Connection: close`. The answer ends at its Content-Length, at the last chunk of a
 * chunked body, or else with the stream. Even the daemon's own answer is bounded (`maxBytes`) and
 * parsed strictly: anything malformed is an error, never a guess.
 */
import type { Socket } from 'node:net';

export interface RawReply {
  status: number;
  body: Buffer;
}

/** `code`: ETIMEDOUT, ECONNRESET, a socket's own code, or EBADREPLY for an answer that is not HTTP/1.1 as sent. */
export class DaemonHttpError extends Error {
  override readonly name = 'DaemonHttpError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Spaces and tabs around a field value or a chunk size: nothing else is whitespace to HTTP. */
const trimOws = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');

/** Node's own limit on a response head. */
const MAX_HEAD_BYTES = 16 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const bad = (why: string): DaemonHttpError => new DaemonHttpError('EBADREPLY', `the daemon's answer is not valid HTTP: ${why}`);

/** The request's bytes; a path, name or value that could split the request is refused, as node:http does. */
export function requestBytes(path: string, host: string, headers: Record<string, string>): Buffer {
  if (!/^\/[\x21-\x7e]*$/.test(path)) throw new TypeError('request path must be printable ASCII starting with /');
  if (!/^[\x21-\x7e]+$/.test(host)) throw new TypeError('invalid character in the Host header');
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${host}`, 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) {
    // These two are the request's own.
    if (name.toLowerCase() === 'host' || name.toLowerCase() === 'connection') continue;
    if (!TOKEN.test(name) || typeof value !== 'string' || !FIELD_VALUE.test(value))
      throw new TypeError(`invalid header ${JSON.stringify(name)}`);
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** The de-chunked body, or undefined while the last chunk has not arrived. */
function dechunk(buf: Buffer, from: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = from;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol === -1) {
      if (buf.length - at > 1024) throw bad('chunk size line too long');
      return undefined;
    }
    const sizeText = trimOws(buf.toString('latin1', at, eol).split(';')[0]!);
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw bad('bad chunk size');
    const size = Number.parseInt(sizeText, 16);
    if (size === 0) return Buffer.concat(parts); // trailers, if any, are not read
    const end = eol + 2 + size;
    if (buf.length < end + 2) return undefined;
    if (buf[end] !== 0x0d || buf[end + 1] !== 0x0a) throw bad('chunk not followed by CRLF');
    parts.push(buf.subarray(eol + 2, end));
    at = end + 2;
  }
}

/**
 * The reply in `buf`, undefined while more is needed (`ended`: the daemon closed, nothing more comes).
 * Throws on anything malformed, on an interim (1xx) answer, which a GET without Expect never gets,
 * and on a declared length over `maxBytes`.
 */
export function parseReply(buf: Buffer, ended: boolean, maxBytes = Number.POSITIVE_INFINITY): RawReply | undefined {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    if (buf.length > MAX_HEAD_BYTES) throw bad('head too large');
    if (ended) throw bad(buf.length === 0 ? 'empty answer' : 'answer ends inside its head');
    return undefined;
  }
  if (headEnd > MAX_HEAD_BYTES) throw bad('head too large');
  const [statusLine, ...fields] = buf.toString('latin1', 0, headEnd).split('\r\n');
  const m = /^HTTP\/1\.[01] ([2-9]\d\d)(?: [^\r\n]*)?$/.exec(statusLine!);
  if (!m) throw bad(/^HTTP\/1\.[01] 1\d\d/.test(statusLine!) ? 'an interim (1xx) answer' : 'bad status line');
  let length: number | undefined;
  let chunked = false;
  for (const f of fields) {
    const colon = f.indexOf(':');
    if (colon <= 0 || !TOKEN.test(f.slice(0, colon))) throw bad('bad header line');
    const name = f.slice(0, colon).toLowerCase();
    const value = trimOws(f.slice(colon + 1));
    if (!FIELD_VALUE.test(value)) throw bad('control character in a header');
    if (name === 'content-length') {
      if (!/^\d{1,12}$/.test(value) || (length !== undefined && length !== Number(value))) throw bad('bad Content-Length');
      length = Number(value);
      if (length > maxBytes) throw bad(`Content-Length ${length} is over ${maxBytes}`);
    } else if (name === 'transfer-encoding') {
      if (value.toLowerCase() !== 'chunked') throw bad('a Transfer-Encoding other than chunked');
      chunked = true;
    }
  }
  if (chunked && length !== undefined) throw bad('both Content-Length and chunked');
  const status = Number(m[1]);
  const from = headEnd + 4;
  // Never a body, whatever the head says.
  if (status === 204 || status === 304) return { status, body: Buffer.alloc(0) };
  if (chunked) {
    const body = dechunk(buf, from);
    if (body === undefined && ended) throw bad('answer ends inside a chunked body');
    return body && { status, body };
  }
  if (length !== undefined) {
    if (buf.length - from >= length) return { status, body: buf.subarray(from, from + length) };
    if (ended) throw bad('answer shorter than its Content-Length');
    return undefined;
  }
  return ended ? { status, body: buf.subarray(from) } : undefined;
}

/** Sends one GET on `socket` and reads its answer; the socket is destroyed once it is read or fails. */
export function getOnSocket(
  socket: Socket,
  req: { path: string; host: string; headers: Record<string, string> },
  limits: { maxBytes: number; deadline: number },
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | undefined, reply?: RawReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const attempt = (ended: boolean) => {
      try {
        const reply = parseReply(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), ended, limits.maxBytes);
        if (reply) finish(undefined, reply);
      } catch (err) {
        finish(err as Error);
      }
    };
    const timer = setTimeout(
      () => finish(new DaemonHttpError('ETIMEDOUT', 'the daemon did not answer in time')),
      Math.max(1, limits.deadline - Date.now()),
    );
    socket.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limits.maxBytes + MAX_HEAD_BYTES) return finish(new DaemonHttpError('EBADREPLY', 'reply too large'));
      chunks.push(c);
      attempt(false);
    });
    socket.on('end', () => attempt(true));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(new DaemonHttpError(err.code ?? 'ECONNRESET', err.message)));
    socket.on('close', () => finish(new DaemonHttpError('ECONNRESET', 'the daemon closed the connection before answering')));
    // Closed while its owner was checked: no event is coming.
    if (socket.destroyed || socket.readableEnded) {
      finish(new DaemonHttpError('ECONNRESET', 'the daemon closed the connection before answering'));
      return;
    }
    try {
      socket.write(requestBytes(req.path, req.host, req.headers));
    } catch (err) {
      finish(err as Error);
    }
  });
}
