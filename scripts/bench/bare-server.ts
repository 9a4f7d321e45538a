/**
 * The bare-node baseline, run as its own process by baselines.ts: node:http
 * and nothing else, answering each path with the exact status, headers and
 * body credport sent for it (captured from the running daemon). It checks no
 * token and no Host header: it is the floor that any server written in Node
 * stands on, so credport / bare node is the price of everything credport does
 * on top (routing, guards, token check, metrics, JSON encoding).
 *
 * Usage: node bare-server.js SPEC.json   (spec: { port, routes: [{ path, status, headers, bodyBase64 }] })
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

interface RouteSpec {
  path: string;
  status: number;
  /** Header name/value pairs in the order credport sent them. */
  headers: [string, string][];
  bodyBase64: string;
}

export interface BareServerSpec {
  port: number;
  routes: RouteSpec[];
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: bare-server.js SPEC.json');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as BareServerSpec;
  const routes = new Map(
    spec.routes.map((r) => [r.path, { status: r.status, headers: r.headers.flat(), body: Buffer.from(r.bodyBase64, 'base64') }]),
  );
  const notFound = Buffer.from('Not Found\n');
  const server = createServer((req, res) => {
    const route = routes.get(req.url ?? '');
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': notFound.length });
      res.end(notFound);
      return;
    }
    // A flat [name, value, ...] array keeps the headers' order and case as captured.
    res.writeHead(route.status, route.headers);
    res.end(route.body);
  });
  // The same keep-alive timeout as the daemon's fastify, so idle connections are treated alike.
  server.keepAliveTimeout = 5_000;
  server.listen(spec.port, '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
  // close() waits for idle keep-alive sockets; those belong to the benchmark, which is done with them.
  process.on('SIGTERM', () => server.closeAllConnections());
}

main();
