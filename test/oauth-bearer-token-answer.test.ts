/**
 * The OAuth bearer-token answer as both clouds read it: every refusal (with the cloud's own service
 * name and wording), every tolerance (a digit-string expires_in for Entra only, token_type in any case,
 * issued_token_type absent for Google), the expiry counted from when the request left, and the shared
 * form POST, JSON readers and failures the two clouds now take from providers/.
 */
import t, { type Test } from 'tap';
import { parseTokenAnswer } from '../daemon/clouds/azure/entra/token-request.js';
import { MAX_EXPIRES_IN, parseStsAnswer } from '../daemon/clouds/gcp/wif/sts-exchange.js';
import { type BearerAnswerRules, parseBearerTokenAnswer } from '../daemon/providers/oauth/bearer-token-answer.js';
import { tokenEndpointRequest } from '../daemon/providers/oauth/token-endpoint-request.js';
import { ProviderError } from '../daemon/providers/types.js';
import { malformed, retryableStatus, transportError } from '../daemon/providers/upstream/failures.js';
import { jsonObjectAnswer, jsonObjectOf } from '../daemon/providers/upstream/json-answer.js';

const SENT = Date.UTC(2026, 0, 1, 12, 0, 0);
const TOKEN = 'ya29.a0AfH6SMB-token_value~with/visible+ascii=';
const ok = { access_token: TOKEN, token_type: 'Bearer', expires_in: 3599 };
const json = (v: unknown): string => JSON.stringify(v);

type Parse = (text: string, status: number, sentAt: number) => { accessToken: string; expiration: Date };
const clouds: [string, Parse, string, number, number][] = [
  ['Entra ID', parseTokenAnswer, 'Entra ID', 86_400, 16_384],
  ['Google STS', parseStsAnswer, 'Google STS', MAX_EXPIRES_IN, 8_192],
];

function refusedAs(t: Test, parse: Parse, text: string, service: string, why: string | RegExp): void {
  let err: unknown;
  try {
    parse(text, 200, SENT);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ProviderError, `${JSON.stringify(text).slice(0, 60)} refused`);
  const e = err as ProviderError;
  t.equal(e.code, 'MalformedResponse');
  t.equal(e.retryable, true);
  t.equal(e.upstreamStatus, 200);
  const prefix = `${service} answered with a response that could not be read: `;
  t.ok(e.message.startsWith(prefix), `names ${service}: ${e.message}`);
  if (typeof why === 'string') t.equal(e.message.slice(prefix.length), why);
  else t.match(e.message.slice(prefix.length), why);
}

for (const [name, parse, service, max, longest] of clouds) {
  t.test(`${name}: a good answer, expiry counted from when the request left`, async (t) => {
    const got = parse(json(ok), 200, SENT);
    t.equal(got.accessToken, TOKEN);
    t.equal(got.expiration.getTime(), SENT + 3599 * 1000);
    t.equal(parse(json({ ...ok, token_type: 'bEaReR' }), 200, SENT).accessToken, TOKEN, 'token_type in any case');
    t.equal(parse(json({ ...ok, expires_in: max }), 200, SENT).expiration.getTime(), SENT + max * 1000, 'the maximum itself');
    t.equal(parse(json({ ...ok, access_token: 'x'.repeat(longest) }), 200, SENT).accessToken.length, longest, 'the longest token');
    t.equal(parse(json({ ...ok, scope: 'x', extra: [1] }), 200, SENT).accessToken, TOKEN, 'unknown fields ignored');
  });

  t.test(`${name}: every refusal, worded as before`, async (t) => {
    const r = (text: string, why: string | RegExp): void => refusedAs(t, parse, text, service, why);
    r('', 'empty body');
    r('{"access_token":"abc",', 'the body is not JSON (truncated?)');
    r('<html>proxy</html>', 'the body is not JSON (truncated?)');
    r('[1]', 'the body is not a JSON object');
    r('null', 'the body is not a JSON object');
    r('"token"', 'the body is not a JSON object');
    r(json({ ...ok, access_token: undefined }), 'no usable access_token');
    r(json({ ...ok, access_token: 42 }), 'no usable access_token');
    r(json({ ...ok, access_token: '' }), 'no usable access_token');
    r(json({ ...ok, access_token: 'two words' }), 'no usable access_token');
    r(json({ ...ok, access_token: 'line\nbreak' }), 'no usable access_token');
    r(json({ ...ok, access_token: 'tökén' }), 'no usable access_token');
    r(json({ ...ok, access_token: 'x'.repeat(longest + 1) }), 'no usable access_token');
    r(json({ ...ok, token_type: undefined }), 'token_type is not Bearer');
    r(json({ ...ok, token_type: 'mac' }), 'token_type is not Bearer');
    r(json({ ...ok, token_type: 'Bearer ' }), 'token_type is not Bearer');
    const expiry = `expires_in is not a whole number of seconds from 1 to ${max}`;
    for (const bad of [undefined, null, 0, -1, 1.5, max + 1, true, '', '12a', '1e3', ' 60', '-60', '1234567890', [60]])
      r(json({ ...ok, expires_in: bad }), expiry);
  });
}

t.test('Entra: expires_in as a digit string, as MSAL takes it', async (t) => {
  t.equal(parseTokenAnswer(json({ ...ok, expires_in: '3599' }), 200, SENT).expiration.getTime(), SENT + 3599 * 1000);
  t.equal(parseTokenAnswer(json({ ...ok, expires_in: '086400' }), 200, SENT).expiration.getTime(), SENT + 86_400 * 1000, 'leading zero');
  const why = 'expires_in is not a whole number of seconds from 1 to 86400';
  refusedAs(t, parseTokenAnswer, json({ ...ok, expires_in: '0' }), 'Entra ID', why);
  refusedAs(t, parseTokenAnswer, json({ ...ok, expires_in: '86401' }), 'Entra ID', why);
  refusedAs(t, parseTokenAnswer, json({ ...ok, expires_in: '3599.0' }), 'Entra ID', why);
  t.equal(parseTokenAnswer(json({ ...ok, issued_token_type: 'anything' }), 200, SENT).accessToken, TOKEN, 'no issued_token_type check');
});

t.test('Google STS: no digit string; issued_token_type checked when present', async (t) => {
  refusedAs(
    t,
    parseStsAnswer,
    json({ ...ok, expires_in: '3599' }),
    'Google STS',
    `expires_in is not a whole number of seconds from 1 to ${MAX_EXPIRES_IN}`,
  );
  const access = 'urn:ietf:params:oauth:token-type:access_token';
  t.equal(parseStsAnswer(json({ ...ok, issued_token_type: access }), 200, SENT).accessToken, TOKEN);
  for (const other of ['urn:ietf:params:oauth:token-type:jwt', '', null, 1])
    refusedAs(t, parseStsAnswer, json({ ...ok, issued_token_type: other }), 'Google STS', 'issued_token_type is not an access token');
  // The service's own check runs after token_type and before expires_in, as before.
  refusedAs(t, parseStsAnswer, json({ ...ok, token_type: 'mac', issued_token_type: 'x' }), 'Google STS', 'token_type is not Bearer');
  refusedAs(
    t,
    parseStsAnswer,
    json({ ...ok, expires_in: 0, issued_token_type: 'x' }),
    'Google STS',
    'issued_token_type is not an access token',
  );
});

t.test('the shared parser: rules as given, the status kept', async (t) => {
  const rules: BearerAnswerRules = {
    service: 'Example',
    maxExpiresIn: 60,
    tokenShape: /^[a-z]{1,4}$/,
    refuse: (b) => (b.x ? 'x is set' : undefined),
  };
  t.equal(
    parseBearerTokenAnswer(json({ access_token: 'abcd', token_type: 'BEARER', expires_in: 60 }), 201, 0, rules).expiration.getTime(),
    60_000,
  );
  t.throws(() => parseBearerTokenAnswer(json({ access_token: 'abcde', token_type: 'Bearer', expires_in: 1 }), 201, 0, rules), {
    code: 'MalformedResponse',
    upstreamStatus: 201,
    message: 'Example answered with a response that could not be read: no usable access_token',
  });
  t.throws(() => parseBearerTokenAnswer(json({ access_token: 'ab', token_type: 'Bearer', expires_in: 1, x: 1 }), 201, 0, rules), {
    message: /: x is set$/,
  });
});

t.test('the token endpoint request: form-encoded, JSON asked for, its length given', async (t) => {
  const req = tokenEndpointRequest({ grant_type: 'client_credentials', scope: 'a b', assertion: 'x.y+z/=é' });
  t.equal(req.method, 'POST');
  t.same(req.headers, {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    'content-length': String(Buffer.byteLength(String(req.body))),
  });
  const form = new URLSearchParams(String(req.body));
  t.same(
    [...form.entries()],
    [
      ['grant_type', 'client_credentials'],
      ['scope', 'a b'],
      ['assertion', 'x.y+z/=é'],
    ],
  );
  t.equal(
    req.headers['content-length'],
    String(Buffer.byteLength('grant_type=client_credentials&scope=a+b&assertion=x.y%2Bz%2F%3D%C3%A9')),
  );
});

t.test('JSON readers and the shared failures', async (t) => {
  t.same(jsonObjectOf('{"error":"invalid_grant"}'), { error: 'invalid_grant' });
  for (const text of ['', 'nope', '[]', 'null', '1']) t.equal(jsonObjectOf(text), undefined, `${text || 'empty'}: no object`);
  t.same(jsonObjectAnswer('S', '{"a":1}', 200), { a: 1 });
  t.throws(() => jsonObjectAnswer('S', '', 200), { message: 'S answered with a response that could not be read: empty body' });

  t.same([429, 500, 503, 400, 401, 403, 404].map(retryableStatus), [true, true, true, false, false, false, false]);
  const m = malformed('S', 'why', 502);
  t.match(m, { code: 'MalformedResponse', retryable: true, upstreamStatus: 502 });
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  t.match(transportError('Entra ID', refused), {
    code: 'UpstreamUnreachable',
    message: 'cannot reach Entra ID (ECONNREFUSED)',
    retryable: true,
  });
  t.match(transportError('Google STS', new Error('socket hang up')), { message: 'cannot reach Google STS (socket hang up)' });
  t.equal(transportError('S', m), m, 'a ProviderError passes as it is');
});
