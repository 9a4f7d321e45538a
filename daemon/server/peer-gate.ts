/**
 * The peer check, as one fastify hook beside the request guards: a route
 * declares its access class in its config (`credentials`, `monitor`, or none
 * for public), and the hook identifies the connection's peer (once per
 * connection) and refuses what the policy does not allow, before any handler
 * runs, so a refused peer starts no refresh and mints no IMDS token.
 */
import { serverError, type ErrorBody } from '../errors.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import type { Logger } from '../logging/logger.js';
import type { AccessClass, AccessPolicy, Refusal } from '../peer/access-policy.js';
import type { PeerIdentifier, PeerResult } from '../peer/peer-identifier.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: AccessClass;
  }
}

export interface PeerAccess {
  identifier: PeerIdentifier;
  policy: () => AccessPolicy;
  refused: (reason: Refusal) => void;
}

export type AccessDecision = { ok: true; uid: number } | { ok: false; status: number; body: ErrorBody; reason: Refusal; uid?: number };

/** The one rule: an identified peer whose uid the policy allows this class to. decide() and allowedNow() both ask it. */
function permitted(result: PeerResult, cls: AccessClass, policy: AccessPolicy): boolean {
  return result.ok && policy.allows(cls, result.uid);
}

export function decide(result: PeerResult, cls: AccessClass, policy: AccessPolicy): AccessDecision {
  if (!result.ok)
    return {
      ok: false,
      ...serverError('UnidentifiedPeer', 'the connecting process could not be identified; refused'),
      reason: 'unidentified',
    };
  if (!permitted(result, cls, policy)) {
    return {
      ok: false,
      ...serverError('ForbiddenUser', 'this user may not use this endpoint (see [daemon] allow_uids)'),
      reason: 'uid',
      uid: result.uid,
    };
  }
  return { ok: true, uid: result.uid };
}

/** For the fast path: true only when the peer is already identified and allowed. */
export function allowedNow(a: PeerAccess, socket: Socket, cls: AccessClass): boolean {
  const r = a.identifier.known(socket);
  // decide()'s rule without building the decision (this runs on every fast-path request).
  return r !== undefined && permitted(r, cls, a.policy());
}

export function refuse(
  a: PeerAccess,
  log: Logger,
  reply: FastifyReply,
  d: Extract<AccessDecision, { ok: false }>,
  path: string,
): FastifyReply {
  a.refused(d.reason);
  log.warn({ code: d.body.Code, peerUid: d.uid ?? null, path: path.split('?', 1)[0]?.slice(0, 200) }, 'request refused: peer not allowed');
  return reply.code(d.status).send(d.body);
}

export function registerPeerGate(app: FastifyInstance, a: PeerAccess, log: Logger): void {
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const cls = req.routeOptions.config?.access;
    if (cls === undefined || cls === 'public') return done();
    const apply = (r: PeerResult) => {
      const d = decide(r, cls, a.policy());
      if (d.ok) return done();
      void refuse(a, log, reply, d, req.url);
    };
    const r = a.identifier.identify(req.raw.socket);
    if (r instanceof Promise) void r.then(apply);
    else apply(r);
  });
}
