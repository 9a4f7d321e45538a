/**
 * Handing a profile's credentials to an identified peer, shared by every
 * endpoint (ECS, IMDS, and those to come): the profile's executable rule,
 * the credentials lookup, and one audit record per handout. The peer's uid
 * was already checked by the peer gate; this adds what needs the process.
 */
import type { Socket } from 'node:net';
import { AccessPolicy } from '../peer/access-policy.js';
import type { PeerProcess } from '../peer/types.js';
import type { AwsCredentials } from '../providers/types.js';
import type { ServerContext } from './context.js';
import { lookupCredentials, type Lookup } from './credentials-lookup.js';

function record(ctx: ServerContext, socket: Socket, profile: string, endpoint: string, c: AwsCredentials, p: PeerProcess | null | undefined): void {
  const peer = ctx.access.identifier.known(socket);
  ctx.metrics.handout(profile, p?.exe ?? null);
  ctx.audit.record({
    time: new Date(ctx.now()),
    profile,
    endpoint,
    accessKeyId: c.accessKeyId,
    expiration: c.expiration,
    uid: peer?.ok ? peer.uid : -1,
    pid: p?.pid ?? null,
    exe: p?.exe ?? null,
    argv0: p?.argv0 ?? null,
  });
}

/** Whether the peer's process must be known before this profile's credentials can go out. */
function needsProcess(ctx: ServerContext, profile: string): boolean {
  return ctx.audit.enabled || (ctx.executables.get(profile)?.length ?? 0) > 0;
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

export async function handOut(ctx: ServerContext, socket: Socket, profile: string, endpoint: string): Promise<Lookup> {
  // The process lookup runs beside the credentials lookup, not after it.
  const proc = needsProcess(ctx, profile) ? ctx.access.identifier.process(socket) : Promise.resolve(undefined);
  const rule = ctx.executables.get(profile);
  if (rule && rule.length > 0 && !AccessPolicy.executableAllowed(rule, await proc)) {
    ctx.access.refused('executable');
    return { ok: false, status: 403, body: { Code: 'ForbiddenExecutable', Message: `profile ${profile} is limited to the executables in allow_executables` } };
  }
  const result = await lookupCredentials(ctx, profile);
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
export function handOutNow(ctx: ServerContext, socket: Socket, profile: string, endpoint: string, c: AwsCredentials): boolean {
  if (!needsProcess(ctx, profile)) {
    record(ctx, socket, profile, endpoint, c, undefined);
    return true;
  }
  const p = ctx.access.identifier.knownProcess(socket);
  if (p === undefined) return false;
  const rule = ctx.executables.get(profile);
  if (rule && rule.length > 0 && !AccessPolicy.executableAllowed(rule, p ?? undefined)) return false;
  record(ctx, socket, profile, endpoint, c, p);
  return true;
}
