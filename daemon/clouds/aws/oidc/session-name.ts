/**
 * RoleSessionName must be 2-64 characters of [\w+=,.@-]. The default names the
 * device (host and key thumbprint) so CloudTrail shows which machine acted.
 */
import { hostname } from 'node:os';

const INVALID = /[^\w+=,.@-]/g;

export function sanitizeSessionPart(s: string): string {
  return s.replace(INVALID, '-');
}

export function defaultSessionName(thumbprint: string, host: string = hostname()): string {
  const suffix = `-${sanitizeSessionPart(thumbprint.slice(0, 8))}`;
  const prefix = 'credport-';
  const room = 64 - prefix.length - suffix.length;
  const h = sanitizeSessionPart(host.split('.')[0] ?? '').slice(0, room) || 'host';
  return `${prefix}${h}${suffix}`;
}

export function isValidSessionName(s: string): boolean {
  return /^[\w+=,.@-]{2,64}$/.test(s);
}
