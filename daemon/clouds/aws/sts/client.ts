/**
 * One STS Query API call (AssumeRoleWithWebIdentity unsigned, AssumeRole SigV4-signed with the caller's
 * session) over boundedFetch, so every attempt has one deadline and a body cap. It retries inside the
 * call as the AWS SDK's standard mode does (retry.ts), learns the service's clock from every answer's
 * Date header, and signs with that clock: when STS refuses a signature for its timestamp and the
 * refusal taught a new offset, the request is signed again at once, without using up an attempt.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClockSkew } from '../../../providers/clock-skew.js';
import { ProviderError } from '../../../providers/types.js';
import { boundedFetch, type UpstreamLimits, type UpstreamResponse } from '../../../providers/upstream/bounded-fetch.js';
import { amzDate } from '../sigv4/encoding.js';
import { type HmacCredentials, signHmac } from '../sigv4/hmac.js';
import { errorAnswer, isClockSkewError, malformedAnswer, transportError } from './errors.js';
import { FORM_CONTENT_TYPE, type StsAction, stsForm } from './form.js';
import { readError, readStsDocument, readSuccess, type StsSuccess } from './response.js';
import { isThrottling, retriesAnswer, retriesTransport, retryDelayMs } from './retry.js';

const SERVICE = 'STS';

export interface StsCall {
  action: StsAction;
  params: Record<string, string | number | undefined>;
  /** Where to send it (endpoint.ts). */
  url: URL;
  /** The signing region: the profile's region, also with an endpoint override. */
  region: string;
  /** Sign with these (AssumeRole); without them the call is unsigned (AssumeRoleWithWebIdentity). */
  credentials?: HmacCredentials;
  limits: UpstreamLimits;
  /** Attempts in all, at least 1. */
  maxAttempts: number;
  /** The provider's learnt offset to the service's clock, kept between calls. */
  skew: ClockSkew;
  now: () => number;
  random?: () => number;
  signal?: AbortSignal;
}

export interface StsResult extends StsSuccess {
  status: number;
}

function cancelled(): ProviderError {
  return new ProviderError('Aborted', `the request to ${SERVICE} was cancelled`, true);
}

/** The headers to send: signed with the service's clock (ours plus the learnt offset) when signing. */
function headersFor(call: StsCall, body: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': FORM_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(body)),
  };
  if (call.credentials === undefined) return headers;
  return signHmac(
    {
      method: 'POST',
      host: call.url.host,
      path: call.url.pathname,
      headers,
      body,
      amzDate: amzDate(call.now() + call.skew.ms),
      region: call.region,
      service: 'sts',
    },
    call.credentials,
  );
}

/** A 2xx answer read, or the failure it amounts to. */
function readAnswer(call: StsCall, got: UpstreamResponse): StsResult | ProviderError {
  const text = got.body.toString('utf8');
  if (got.status < 200 || got.status >= 300) return errorAnswer(got.status, text);
  const doc = readStsDocument(text);
  if ('unreadable' in doc) return malformedAnswer(got.status, doc.unreadable);
  const success = readSuccess(doc.root, call.action);
  if (success !== undefined) return { ...success, status: got.status };
  // An ErrorResponse with a 2xx status is still an error; anything else is not STS.
  if (readError(doc.root)?.code !== undefined) return errorAnswer(got.status, text);
  return malformedAnswer(got.status, `expected a ${call.action}Response document, got root element ${doc.root.name}`);
}

/** Throws ProviderError; see errors.ts for the codes. */
export async function callSts(call: StsCall): Promise<StsResult> {
  const maxAttempts = Math.max(1, call.maxAttempts);
  const random = call.random ?? Math.random;
  const body = stsForm(call.action, call.params);
  let resigned = false;
  for (let attempt = 1; ; attempt++) {
    if (call.signal?.aborted) throw cancelled();
    const usedSkew = call.skew.ms;
    const headers = headersFor(call, body);
    const sentAt = call.now();
    let failure: ProviderError;
    let retry: boolean;
    try {
      const got = await boundedFetch(
        call.url.href,
        { method: 'POST', headers, body },
        { service: SERVICE, limits: call.limits, ...(call.signal ? { signal: call.signal } : {}) },
      );
      const answer = readAnswer(call, got);
      if (!(answer instanceof ProviderError)) {
        // A success's Date is believed within MAX_SKEW_MS or the answer is refused (ImplausibleClockSkew).
        call.skew.observe(got.headers.get('date'), sentAt, call.now(), SERVICE);
        return answer;
      }
      failure = answer;
      try {
        call.skew.observe(got.headers.get('date'), sentAt, call.now(), SERVICE);
      } catch {
        // An absurd Date on a refusal: keep the refusal, which says more, and the offset we had.
      }
      retry = retriesAnswer(failure);
    } catch (err) {
      // Our own limits (deadline, body cap) and the caller's cancel end the call, as they did with the SDK.
      if (err instanceof ProviderError) throw err;
      failure = transportError(err);
      retry = retriesTransport((err as { code?: unknown } | null)?.code);
    }
    if (call.credentials !== undefined && !resigned && isClockSkewError(failure) && call.skew.ms !== usedSkew) {
      resigned = true;
      attempt--;
      continue;
    }
    if (!retry || attempt >= maxAttempts) throw failure;
    try {
      await sleep(retryDelayMs(attempt - 1, isThrottling(failure), random), undefined, call.signal ? { signal: call.signal } : {});
    } catch {
      throw cancelled();
    }
  }
}
