/**
 * Request bodies on the IMDS and ECS routes, which read none: real IMDS and
 * the ECS agent answer whatever Content-Type a client puts on a request, so
 * credport does too. The Ruby SDK v3 sends `application/x-www-form-urlencoded`
 * on its empty token PUT, and fastify would refuse any type it has no parser
 * for (415) or an empty JSON body (400) before the route runs.
 *
 * What stays: a body that does come is still read against the server's
 * bodyLimit (1 KiB), so a large one is refused with 413 as before.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** True when the request announces no body at all (no chunked framing, no length or a zero one). */
function bodiless(headers: FastifyRequest['headers']): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/** In the (encapsulated) plugin `app`: accept any or no Content-Type, read a body within the limit, ignore it. */
export function ignoreRequestBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  // '*' catches every well-formed type; parseAs makes fastify enforce bodyLimit while reading.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, _body, done) => done(null, undefined));
  // A Content-Type on a request with no body describes nothing; dropping it here, before fastify parses,
  // keeps even a malformed one (which fastify refuses with 415 ahead of any parser) from mattering.
  app.addHook('onRequest', (req: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    if (req.raw.headers['content-type'] !== undefined && bodiless(req.raw.headers)) delete req.raw.headers['content-type'];
    done();
  });
}
