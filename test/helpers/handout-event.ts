/** A handout as the server reports it, for the audit tests: fixed values, overridable. */
import type { HandoutEvent } from '../../daemon/audit/record.js';

export function handoutEvent(at: number, over: Partial<HandoutEvent> = {}): HandoutEvent {
  return {
    time: new Date(at),
    profile: 'dev',
    endpoint: 'ecs',
    accessKeyId: 'ASIAFAKE00000001',
    expiration: new Date(at + 3_600_000),
    uid: 1000,
    pid: 4242,
    exe: '/usr/bin/curl',
    argv0: 'curl',
    ...over,
  };
}
