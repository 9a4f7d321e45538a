/**
 * An upstream's JSON body as an object, read two ways: an error answer's body is best effort (a proxy's
 * page is no JSON, and the status still says something), a success answer's body must be an object or
 * the call failed: a truncated body must never be taken for an answer.
 */
import { malformed } from './failures.js';

/** The body as a JSON object, or undefined: for error answers, whose fields are only hints. */
export function jsonObjectOf(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The body of a success answer as a JSON object; anything else throws MalformedResponse saying why. */
export function jsonObjectAnswer(service: string, text: string, status: number): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw malformed(service, text === '' ? 'empty body' : 'the body is not JSON (truncated?)', status);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw malformed(service, 'the body is not a JSON object', status);
  return body as Record<string, unknown>;
}
