/**
 * Handing a profile's credentials to an identified peer, shared by every
 * endpoint of every cloud: the profile's executable rule,
 * the credentials lookup, and one audit record per handout. The peer's uid
 * was already checked by the peer gate; this adds what needs the process.
 */
import type { Socket } from 'node:net';
import { AccessPolicy } from '../peer/access-policy.js';
import type { HandoutEvent } from '../audit/record.js';
import type { PeerProcess } from '../peer/types.js';
import { serverError } from '../errors.js';
import type { Credentials } from '../providers/types.js';
import type { ServerContext } from './context.js';
import { lookupCredentials, type Lookup } from './credentials-lookup.js';

/**
 * The last handout on a connection. An SDK polling over a kept-alive connection gets the same
 * credentials object again and again: those repeats are counted here and handed to the audit log in
 * one call (when the credentials change, the connection closes, or a minute has passed), so the hot
 * path pays a comparison and a counter, not an audit record per request.
 */
interface LastHandout {
  credentials: Credentials;
  /** Its public id, taken when it was handed out (the profile may be gone when repeats are flushed). */
  credentialId: string;
  profile: string;
  endpoint: string;
  process: PeerProcess | null;
  counter: { inc(): void };
  repeats: number;
  lastAt: number;
  flushedAt: number;
}

const REPEAT_FLUSH_MS = 60_000;
const lastHandouts = new WeakMap<Socket, LastHandout>();
/** Per daemon, the connections with a last handout: what a shutdown must flush before the audit log closes. */
const openHandouts = new WeakMap<ServerContext, Set<Socket>>();

/** Hands every batched repeat to the audit log (at shutdown, before it closes). */
export function flushHandouts(ctx: ServerContext): void {
  for (const socket of openHandouts.get(ctx) ?? []) {
    const h = lastHandouts.get(socket);
    if (h) flushRepeats(ctx, socket, h);
  }
}

function event(ctx: ServerContext, socket: Socket, h: LastHandout, at: number): HandoutEvent {
  const peer = ctx.access.identifier.known(socket);
  const p = h.process;
  return {
    time: new Date(at),
    profile: h.profile,
    endpoint: h.endpoint,
    accessKeyId: h.credentialId,
    expiration: h.credentials.expiration,
    uid: peer?.ok ? peer.uid : -1,
    pid: p?.pid ?? null,
    exe: p?.exe ?? null,
    argv0: p?.argv0 ?? null,
  };
}

function flushRepeats(ctx: ServerContext, socket: Socket, h: LastHandout): void {
  if (h.repeats === 0) return;
  ctx.audit.record(event(ctx, socket, h, h.lastAt), h.repeats);
  h.repeats = 0;
  h.flushedAt = ctx.now();
}

function record(
  ctx: ServerContext,
  socket: Socket,
  profile: string,
  endpoint: string,
  c: Credentials,
  found: PeerProcess | null | undefined,
): void {
  const now = ctx.now();
  // Unknown is null whichever path asked (the fast path's "looked up, not found" or the routes').
  const p = found ?? null;
  const last = lastHandouts.get(socket);
  if (last && last.credentials === c && last.profile === profile && last.endpoint === endpoint && last.process === p) {
    last.counter.inc();
    last.repeats++;
    last.lastAt = now;
    // A lookup that ended after the client hung up records late: nothing will close the socket again.
    if (socket.destroyed || now - last.flushedAt >= REPEAT_FLUSH_MS) flushRepeats(ctx, socket, last);
    return;
  }
  if (last) flushRepeats(ctx, socket, last);
  const h: LastHandout = {
    credentials: c,
    credentialId: ctx.profiles.get(profile)?.refresher.credentialId(c) ?? 'unknown',
    profile,
    endpoint,
    process: p,
    counter: ctx.metrics.handoutCounter(profile, p?.exe ?? null),
    repeats: 0,
    lastAt: now,
    flushedAt: now,
  };
  lastHandouts.set(socket, h);
  if (!last && !socket.destroyed) {
    let open = openHandouts.get(ctx);
    if (!open) openHandouts.set(ctx, (open = new Set()));
    open.add(socket);
    socket.once('close', () => {
      const latest = lastHandouts.get(socket);
      if (latest) flushRepeats(ctx, socket, latest);
      open.delete(socket);
    });
  }
  h.counter.inc();
  ctx.audit.record(event(ctx, socket, h, now));
}

/** Whether the peer's process must be known before this profile's credentials can go out. */
function needsProcess(ctx: ServerContext, profile: string): boolean {
  return ctx.audit.enabled || (ctx.profiles.get(profile)?.executables?.length ?? 0) > 0;
}

/**
 * Whether any profile's handouts need the peer's process: held requests look it up ahead
 * (server/http-server.ts), so that the fast path can serve them.
 */
export function someHandoutNeedsProcess(ctx: ServerContext): boolean {
  for (const p of ctx.profiles.entries()) if (needsProcess(ctx, p.name)) return true;
  return ctx.audit.enabled;
}

/**
 * How long a handout waits for the audit's process lookup before it is served anyway (the line is
 * then written when the lookup ends). Long enough for a scan of a normal machine, so that a client
 * that exits right after its answer is still named; short next to an SDK's 1 s timeout.
 */
const AUDIT_WAIT_MS = 100;

function within<T>(p: Promise<T>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void p.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * `cloud`: the endpoint's cloud, whose profiles alone it serves. `get`: where the credential comes
 * from when it is not the profile's refreshed credentials (a freshly signed subject token).
 */
export async function handOut<C extends Credentials>(
  ctx: ServerContext,
  socket: Socket,
  profile: string,
  endpoint: string,
  cloud: string,
  get: () => Promise<Lookup<C>> = () => lookupCredentials<C>(ctx, profile, cloud),
): Promise<Lookup<C>> {
  // The process lookup runs beside the credentials lookup, not after it.
  const proc = needsProcess(ctx, profile) ? ctx.access.identifier.process(socket) : Promise.resolve(undefined);
  const rule = ctx.profiles.get(profile)?.executables;
  if (rule && rule.length > 0 && !AccessPolicy.executableAllowed(rule, await proc)) {
    ctx.access.refused('executable');
    return { ok: false, ...serverError('ForbiddenExecutable', `profile ${profile} is limited to the executables in allow_executables`) };
  }
  const result = await get();
  if (result.ok) {
    const c = result.credentials;
    await within(proc, AUDIT_WAIT_MS);
    void proc.then((p) => record(ctx, socket, profile, endpoint, c, p));
  }
  return result;
}

/**
 * For the fast path: true when nothing needs waiting for (the peer's process is
 * known where it is needed and passes the rule); records the handout.
 */
export function handOutNow(ctx: ServerContext, socket: Socket, profile: string, endpoint: string, c: Credentials): boolean {
  if (!needsProcess(ctx, profile)) {
    record(ctx, socket, profile, endpoint, c, undefined);
    return true;
  }
  const p = ctx.access.identifier.knownProcess(socket);
  if (p === undefined) return false;
  const rule = ctx.profiles.get(profile)?.executables;
  if (rule && rule.length > 0 && !AccessPolicy.executableAllowed(rule, p ?? undefined)) return false;
  record(ctx, socket, profile, endpoint, c, p);
  return true;
}
