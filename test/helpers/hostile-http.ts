/**
 * Raw HTTP over a net.Socket for the hostile-input tests: the bytes are written exactly as given (no Host
 * added, no header validation, no framing fixed up), and whatever comes back is kept verbatim and also
 * parsed into responses, so a test can look both at status codes and at every byte the daemon sent.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-cased names; repeated headers keep every value. */
  headers: Map<string, string[]>;
  body: Buffer;
}

export interface Exchange {
  /** Every byte the server sent on this connection. */
  raw: Buffer;
  /** The responses that could be parsed from `raw` (1xx interim responses included). */
  responses: RawResponse[];
  /** True if a TCP connection was established at all. */
  connected: boolean;
  /** The server closed (or reset) the connection before we gave up waiting. */
  closedByServer: boolean;
  /** We stopped waiting (quiet or hard limit) with the connection still open. */
  gaveUp: boolean;
  /** A socket error code, if one happened (EPIPE/ECONNRESET when the server cut a long request short). */
  error?: string;
}

export interface ExchangeOptions {
  /** Address to connect to; default 127.0.0.1. */
  host?: string;
  /** Local address to bind before connecting (a non-loopback source for peer checks). */
  localAddress?: string;
  /**
   * A complete request that must get an answer: wait up to `maxMs` for a final response. When false
   * (the generator knows the request is cut short), stop after `quietMs` of silence instead: the server
   * is right to wait for the rest until its own timeout, and the test only cares what it sent so far.
   */
  expectResponse?: boolean;
  /** Silence after which an incomplete request is abandoned. Default 120 ms. */
  quietMs?: number;
  /** After a final response, how long to keep listening for more (pipelined requests). Default 25 ms. */
  graceMs?: number;
  /** Hard limit for the whole exchange. Default 5000 ms. */
  maxMs?: number;
  /** The request was HEAD: responses carry no body whatever their Content-Length says. */
  head?: boolean;
}

interface Parsed {
  responses: RawResponse[];
  /** The last response is complete (there may be none). */
  complete: boolean;
}

/** Splits the bytes a server sent into responses; `closed` lets a body without a length end at EOF. */
export function parseResponses(buf: Buffer, head = false, closed = false): Parsed {
  const responses: RawResponse[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf('\r\n\r\n', pos, 'latin1');
    if (end === -1) return { responses, complete: false };
    const [statusLine = '', ...lines] = buf.subarray(pos, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1] ?? 0);
    const headers = new Map<string, string[]>();
    for (const line of lines) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const name = line.slice(0, i).trim().toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(i + 1).trim()]);
    }
    let bodyStart = end + 4;
    let body: Buffer = Buffer.alloc(0);
    const noBody = head || (status >= 100 && status < 200) || status === 204 || status === 304;
    const te = headers.get('transfer-encoding')?.join(',').toLowerCase() ?? '';
    const cl = headers.get('content-length')?.[0];
    if (noBody) {
      // nothing to read
    } else if (te.includes('chunked')) {
      const chunks: Buffer[] = [];
      let p = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p, 'latin1');
        if (lineEnd === -1) return { responses: [...responses, { status, headers, body: Buffer.concat(chunks) }], complete: false };
        const size = parseInt(buf.subarray(p, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) return { responses: [...responses, { status, headers, body: Buffer.concat(chunks) }], complete: false };
        p = lineEnd + 2;
        if (size === 0) {
          // Trailers (none expected) end with an empty line.
          const trailerEnd = buf.indexOf('\r\n', p, 'latin1');
          if (trailerEnd === -1) return { responses: [...responses, { status, headers, body: Buffer.concat(chunks) }], complete: false };
          p = trailerEnd + 2;
          break;
        }
        if (p + size + 2 > buf.length)
          return { responses: [...responses, { status, headers, body: Buffer.concat(chunks) }], complete: false };
        chunks.push(buf.subarray(p, p + size));
        p += size + 2;
      }
      body = Buffer.concat(chunks);
      bodyStart = p;
      responses.push({ status, headers, body });
      pos = bodyStart;
      continue;
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (bodyStart + n > buf.length)
        return { responses: [...responses, { status, headers, body: buf.subarray(bodyStart) }], complete: false };
      body = buf.subarray(bodyStart, bodyStart + n);
      bodyStart += n;
    } else {
      // No framing: the body runs to the end of the connection.
      responses.push({ status, headers, body: buf.subarray(bodyStart) });
      return { responses, complete: closed };
    }
    responses.push({ status, headers, body });
    pos = bodyStart;
  }
  return { responses, complete: true };
}

/** One connection: write `payload`, collect the answer, close. Never rejects: failures are in the result. */
export function exchange(port: number, payload: Buffer | string, o: ExchangeOptions = {}): Promise<Exchange> {
  const quietMs = o.quietMs ?? 120;
  const graceMs = o.graceMs ?? 25;
  const maxMs = o.maxMs ?? 5000;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let connected = false;
    let closedByServer = false;
    let error: string | undefined;
    let done = false;
    let quiet: NodeJS.Timeout | undefined;
    const sock: Socket = connect({ port, host: o.host ?? '127.0.0.1', ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const finish = (gaveUp: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(hard);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      const { responses } = parseResponses(raw, o.head, closedByServer);
      resolve({ raw, responses, connected, closedByServer, gaveUp, ...(error ? { error } : {}) });
    };
    const hard = setTimeout(() => finish(true), maxMs);
    // Re-armed on every event: after a final response, or (for a request known to be incomplete) after
    // any silence, the exchange is over.
    const arm = () => {
      clearTimeout(quiet);
      const raw = Buffer.concat(chunks);
      const parsed = parseResponses(raw, o.head, false);
      const final = parsed.complete && parsed.responses.some((r) => r.status >= 200);
      if (final) quiet = setTimeout(() => finish(true), graceMs);
      else if (o.expectResponse === false) quiet = setTimeout(() => finish(true), quietMs);
    };
    sock.on('connect', () => {
      connected = true;
      // The server may answer (and close) before a long request is fully written: that is an EPIPE or
      // ECONNRESET on our side, recorded, not thrown.
      sock.write(payload, () => arm());
    });
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    sock.on('end', () => {
      closedByServer = true;
    });
    sock.on('close', () => {
      if (connected) closedByServer = true;
      finish(false);
    });
  });
}

/** The forms a secret may take in text: verbatim, and JSON-escaped ("/" as "\/", quotes, backslashes). */
export function secretForms(v: string): string[] {
  return [...new Set([v, JSON.stringify(v).slice(1, -1), v.replace(/\//g, '\\/')])];
}

/** Names of the secrets (`[name, value]`) found in `text`, in any of their forms. */
export function secretsIn(text: string, secrets: readonly (readonly [string, string])[]): string[] {
  return secrets.filter(([, v]) => v.length > 0 && secretForms(v).some((f) => text.includes(f))).map(([n]) => n);
}

/** Something that looks like an AWS credential, whoever issued it. */
export const CREDENTIAL_SHAPE = /"AccessKeyId"|"SecretAccessKey"|ASIA[A-Z0-9]{16}/;

/** A compact, printable rendering of request bytes for failure messages. */
export function show(b: Buffer | string, max = 400): string {
  const s = typeof b === 'string' ? b : b.toString('latin1');
  const cut = s.length > max ? `${s.slice(0, max)}… (${s.length} bytes)` : s;
  return JSON.stringify(cut);
}

export interface SlowResult {
  /** The server closed the connection (with or without an answer) before `maxMs`. */
  closedByServer: boolean;
  /** Milliseconds from connect to close (or to giving up). */
  elapsedMs: number;
  bytesSent: number;
  raw: Buffer;
}

export interface SlowClient {
  /** Still connected (not closed by either side). */
  open(): boolean;
  done: Promise<SlowResult>;
  destroy(): void;
}

/**
 * Slowloris: connects, then writes `text` one byte every `intervalMs`, never faster, and waits for the
 * server to hang up. Gives up (closedByServer false) after `maxMs`.
 */
export function slowClient(port: number, text: string, o: { intervalMs?: number; maxMs?: number; host?: string } = {}): SlowClient {
  const intervalMs = o.intervalMs ?? 1000;
  const maxMs = o.maxMs ?? 90_000;
  const bytes = Buffer.from(text, 'latin1');
  const sock = connect(port, o.host ?? '127.0.0.1');
  const chunks: Buffer[] = [];
  let sent = 0;
  let started = Date.now();
  let isOpen = false;
  let destroyedByUs = false;
  let timer: NodeJS.Timeout | undefined;
  let give: NodeJS.Timeout | undefined;
  const done = new Promise<SlowResult>((resolve) => {
    let settled = false;
    const settle = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      isOpen = false;
      clearInterval(timer);
      clearTimeout(give);
      sock.destroy();
      resolve({ closedByServer, elapsedMs: Date.now() - started, bytesSent: sent, raw: Buffer.concat(chunks) });
    };
    sock.on('connect', () => {
      isOpen = true;
      started = Date.now();
      const tick = () => {
        if (sent < bytes.length && sock.writable) sock.write(bytes.subarray(sent, ++sent));
      };
      tick();
      timer = setInterval(tick, intervalMs);
      give = setTimeout(() => settle(false), maxMs);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    // A reset is the server hanging up too.
    sock.on('error', () => undefined);
    sock.on('close', () => settle(!destroyedByUs));
  });
  const destroy = () => {
    destroyedByUs = true;
    sock.destroy();
  };
  return { open: () => isOpen, done, destroy };
}
