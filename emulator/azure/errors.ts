// Entra ID's error JSON: OAuth's error and error_description (which starts with the AADSTS code and
// ends with trace and correlation ids), plus error_codes, timestamp, trace_id, correlation_id and
// error_uri. The codes used here are the ones Entra documents for each refusal.

import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';

export class EntraError extends Error {
  override readonly name = 'EntraError';
  constructor(
    readonly status: number,
    readonly error: string,
    readonly aadsts: number,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store, no-cache',
  });
  res.end(text);
}

export function sendEntraError(res: ServerResponse, err: EntraError, now: number, base: string): void {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date(now)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  sendJson(res, err.status, {
    error: err.error,
    error_description: `AADSTS${err.aadsts}: ${err.message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
    error_codes: [err.aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `${base}/error?code=${err.aadsts}`,
  });
}
