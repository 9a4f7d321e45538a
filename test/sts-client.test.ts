/**
 * credport's own STS client, piece by piece: the strict XML reader (well-formed, entity-encoded,
 * malformed, oversized), the answer and error readers against the emulator's independent XML writer,
 * the endpoint each region resolves to (checked against the AWS SDK's own resolver), the form body, and
 * the call itself on a real loopback socket: what is retried inside one call (as the SDK's standard mode
 * retries), what is not, and a skewed STS clock corrected for a signed AssumeRole against the emulator.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { STSClient } from '@aws-sdk/client-sts';
import { startEmulator } from '../emulator/index.js';
import { assumeRoleBody, errorBody, successBody } from '../emulator/xml.js';
import { AwsAssumeRoleProvider } from '../daemon/clouds/aws/assume-role/provider.js';
import { AwsOidcProvider } from '../daemon/clouds/aws/oidc/provider.js';
import { credentialsFromSts } from '../daemon/clouds/aws/sts-credentials.js';
import { callSts, type StsCall } from '../daemon/clouds/aws/sts/client.js';
import { dnsSuffix, regionalStsEndpoint, stsEndpoint } from '../daemon/clouds/aws/sts/endpoint.js';
import { errorAnswer, isClockSkewError } from '../daemon/clouds/aws/sts/errors.js';
import { stsForm } from '../daemon/clouds/aws/sts/form.js';
import { readError, readSuccess } from '../daemon/clouds/aws/sts/response.js';
import { readXml, XmlError } from '../daemon/clouds/aws/sts/xml-reader.js';
import { exportIssuer, publishedJwk } from '../daemon/identity/issuer-documents.js';
import { defaultSubject } from '../daemon/identity/jwt.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { ClockSkew } from '../daemon/providers/clock-skew.js';
import { ProviderError } from '../daemon/providers/types.js';

const EXPIRES = new Date('2030-01-02T03:04:05Z');
const WEB_IDENTITY = {
  subject: 'device:abc',
  audience: 'sts.amazonaws.com',
  assumedRoleArn: 'arn:aws:sts::111122223333:assumed-role/dev/credport-x',
  assumedRoleId: 'AROAEXAMPLE:credport-x',
  accessKeyId: 'ASIAEXAMPLEEXAMPLE12',
  secretAccessKey: 'secret/with+chars=',
  sessionToken: 'token&with<markup>',
  expiration: EXPIRES,
  provider: 'issuer.example/path',
};

t.test('XML reader: well-formed documents', async (t) => {
  const doc = readXml(
    '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<!-- lead --><p:Root xmlns:p="urn:x" a=\'1\' b = "2"><p:A>one</p:A><B/><C><![CDATA[<raw & text>]]></C><!-- mid --></p:Root>\n',
  );
  t.equal(doc.name, 'Root', 'the prefix is dropped');
  t.same(
    doc.children.map((c) => [c.name, c.text]),
    [
      ['A', 'one'],
      ['B', ''],
      ['C', '<raw & text>'],
    ],
  );
  const text = readXml('<M>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42; &#x1F600;</M>').text;
  t.equal(text, 'a <b> & "c" \'d\' AB \u{1F600}', 'entities and character references decoded');
});

t.test('XML reader: malformed documents are refused with the reason', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /root element/],
    ['not XML', '{"message":"json"}', /root element/],
    ['unclosed (truncated)', '<a><b>x</b>', /not closed/],
    ['cut inside a tag', '<a><SecretAccessKey>abc', /not closed/],
    ['mismatched end tag', '<a></b>', /closes element a/],
    ['two roots', '<a/><b/>', /after the root/],
    ['text after the root', '<a/>tail', /after the root/],
    ['text before the root', 'lead<a/>', /root element/],
    ['unknown entity', '<a>&nbsp;</a>', /unknown or invalid reference/],
    ['bare ampersand', '<a>fish & chips</a>', /starts no reference/],
    ['reference to NUL', '<a>&#0;</a>', /invalid reference/],
    ['reference to a surrogate', '<a>&#xD800;</a>', /invalid reference/],
    ['reference past Unicode', '<a>&#x110000;</a>', /invalid reference/],
    ['DOCTYPE with an entity', '<!DOCTYPE a [<!ENTITY x "yyyy">]><a>&x;</a>', /DOCTYPE/],
    ['processing instruction inside', '<a><?php x ?></a>', /processing instruction/],
    ['unquoted attribute', '<a b=c></a>', /malformed start tag/],
    ['raw control character', '<a>\u0001</a>', /U\+0001/],
    ['raw ESC (terminal escape)', '<Code>\u001b[31mEvil</Code>', /U\+001B/],
    ['lone surrogate', '<a>\uD800</a>', /U\+D800/],
    [']]> in text', '<a>]]></a>', /\]\]>/],
    ['unterminated CDATA', '<a><![CDATA[x</a>', /CDATA/],
    ['unterminated comment', '<a><!-- x</a>', /comment/],
    ['no element name', '<>x</>', /element name/],
  ];
  for (const [name, xml, reason] of cases) {
    t.throws(() => readXml(xml), { name: 'XmlError', message: reason }, name);
  }
});

t.test('XML reader: size, depth and element limits', async (t) => {
  const limits = { maxChars: 1000, maxDepth: 8, maxElements: 20 };
  t.throws(() => readXml(`<a>${'x'.repeat(1000)}</a>`, limits), { name: 'XmlError', message: /over the 1000-character limit/ });
  t.throws(() => readXml(`${'<a>'.repeat(9)}${'</a>'.repeat(9)}`, limits), { message: /deeper than 8/ });
  t.ok(readXml(`${'<a>'.repeat(8)}${'</a>'.repeat(8)}`, limits), 'depth 8 is read');
  t.throws(() => readXml(`<r>${'<e/>'.repeat(20)}</r>`, limits), { message: /more than 20 elements/ });
  t.throws(() => readXml(`<r>${'<e/>'.repeat(5000)}</r>`), XmlError, 'default limits hold too');
});

t.test('answers: what the emulator writes is what is read', async (t) => {
  const ok = readSuccess(readXml(successBody(WEB_IDENTITY, 'req-1')), 'AssumeRoleWithWebIdentity');
  t.same(ok, {
    credentials: {
      AccessKeyId: WEB_IDENTITY.accessKeyId,
      SecretAccessKey: WEB_IDENTITY.secretAccessKey,
      SessionToken: WEB_IDENTITY.sessionToken,
      Expiration: EXPIRES,
    },
    assumedRoleArn: WEB_IDENTITY.assumedRoleArn,
  });
  const chained = readSuccess(readXml(assumeRoleBody(WEB_IDENTITY, 'req-2')), 'AssumeRole');
  t.equal(chained?.credentials.SessionToken, 'token&with<markup>', 'entity-encoded values decoded');
  t.equal(chained?.assumedRoleArn, WEB_IDENTITY.assumedRoleArn);
  t.equal(readSuccess(readXml(assumeRoleBody(WEB_IDENTITY, 'r')), 'AssumeRoleWithWebIdentity'), undefined, 'another action: not read');

  const err = readError(readXml(errorBody({ type: 'Sender', code: 'AccessDenied', message: 'no <role> & "no" way' }, 'req-3')));
  t.same(err, { type: 'Sender', code: 'AccessDenied', message: 'no <role> & "no" way', requestId: 'req-3' });
  t.equal(readError(readXml('<html><body>502</body></html>')), undefined, 'not an ErrorResponse');

  // Missing pieces and a bad timestamp: read as absent, then refused as incomplete credentials.
  const partial = successBody(WEB_IDENTITY, 'r').replace(/<SessionToken>[^<]*<\/SessionToken>/, '');
  const missing = readSuccess(readXml(partial), 'AssumeRoleWithWebIdentity');
  t.equal(missing?.credentials.SessionToken, undefined);
  t.throws(() => credentialsFromSts(missing?.credentials, 'arn:aws:iam::111122223333:role/dev', undefined, 200), {
    code: 'MalformedResponse',
    message: /without complete credentials/,
  });
  for (const bad of ['tomorrow', '2030-01-02', '2030-13-45T99:00:00Z', '']) {
    const body = successBody(WEB_IDENTITY, 'r').replace(/<Expiration>[^<]*<\/Expiration>/, `<Expiration>${bad}</Expiration>`);
    t.equal(
      readSuccess(readXml(body), 'AssumeRoleWithWebIdentity')?.credentials.Expiration,
      undefined,
      `Expiration "${bad}" is not a time`,
    );
  }
});

t.test('error answers keep STS code and message; retryable as before', async (t) => {
  const e = (status: number, code: string, message = 'm') => errorAnswer(status, errorBody({ type: 'Sender', code, message }, 'r'));
  t.match(e(400, 'InvalidIdentityToken', 'No OpenIDConnect provider found'), {
    code: 'InvalidIdentityToken',
    message: 'No OpenIDConnect provider found',
    retryable: false,
    upstreamStatus: 400,
  });
  t.match(e(400, 'ExpiredTokenException'), { code: 'ExpiredTokenException', retryable: false });
  t.match(e(403, 'AccessDenied'), { code: 'AccessDenied', retryable: false, upstreamStatus: 403 });
  t.match(e(400, 'IDPCommunicationError'), { code: 'IDPCommunicationError', retryable: true });
  t.match(e(400, 'Throttling'), { code: 'Throttling', retryable: true });
  t.match(e(500, 'InternalFailure'), { code: 'InternalFailure', retryable: true });
  t.match(e(503, 'SomethingNew'), { code: 'SomethingNew', retryable: true }, '5xx: retryable whatever the code');
  t.match(errorAnswer(502, '<html><body>Bad gateway</body></html>'), {
    code: 'UpstreamError',
    retryable: true,
    message: /HTTP 502 without an STS error document/,
  });
  t.match(errorAnswer(404, ''), { code: 'NotFound', retryable: false });
  t.match(e(400, '\u001b[31mEvil'), { code: 'UpstreamError' }, 'a code that is not an identifier');
  t.ok(isClockSkewError(e(403, 'SignatureDoesNotMatch', 'Signature expired: 20300101T000000Z is now earlier than ...')));
  t.ok(isClockSkewError(e(400, 'RequestTimeTooSkewed')));
  t.notOk(isClockSkewError(e(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match')));
});

t.test('endpoints: the regional endpoint the AWS SDK resolves', async (t) => {
  const regions = [
    'us-east-1',
    'eu-west-1',
    'ap-southeast-7',
    'ca-west-1',
    'cn-north-1',
    'cn-northwest-1',
    'us-gov-west-1',
    'us-gov-east-1',
    'us-iso-east-1',
    'us-isob-east-1',
    'us-isof-south-1',
    'eu-isoe-west-1',
    'eusc-de-east-1',
  ];
  for (const region of regions) {
    const sdk = new STSClient({ region, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    const resolved = await sdk.config.endpointProvider({ Region: region, UseFIPS: false, UseDualStack: false, UseGlobalEndpoint: false });
    sdk.destroy();
    t.equal(regionalStsEndpoint(region), resolved.url.href.replace(/\/$/, ''), `${region}: as the SDK resolves it`);
  }
  t.equal(dnsSuffix('cn-north-1'), 'amazonaws.com.cn');
  t.equal(stsEndpoint('eu-west-1').href, 'https://sts.eu-west-1.amazonaws.com/');
  t.equal(stsEndpoint('eu-west-1', 'http://127.0.0.1:4566/sts').href, 'http://127.0.0.1:4566/sts', 'the override, path kept');
  t.throws(() => stsEndpoint('eu-west-1', 'ftp://sts.example'), /http\(s\) URL/);
  t.throws(() => stsEndpoint('eu-west-1', 'sts.example.com'), /not a URL/);
  t.throws(() => stsEndpoint('eu-west-1', 'https://sts.example.com/?x=1'), /query/);
  t.throws(() => regionalStsEndpoint('Not A Region'), /not an AWS region/);
});

t.test('the providers name their endpoint and refuse a bad override', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-sts-ep-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const signer = FileKeySigner.create(join(dir, 'key.pem'));
  const base = {
    signer,
    issuer: 'https://issuer.example',
    subject: 'device:x',
    audience: 'sts.amazonaws.com',
    tokenLifetimeSeconds: 300,
    roleArn: 'arn:aws-cn:iam::111122223333:role/dev',
    region: 'cn-north-1',
    durationSeconds: 3600,
    roleSessionName: 'credport-x',
  };
  t.equal(new AwsOidcProvider(base).describe().source, 'sts:AssumeRoleWithWebIdentity https://sts.cn-north-1.amazonaws.com.cn');
  t.throws(() => new AwsOidcProvider({ ...base, stsEndpoint: 'not a url' }), { code: 'InvalidConfiguration' });
  t.throws(
    () =>
      new AwsAssumeRoleProvider({
        source: async () => {
          throw new Error('unused');
        },
        roleArn: base.roleArn,
        region: 'us-east-1',
        durationSeconds: 900,
        roleSessionName: 'x1',
        stsEndpoint: 'file:///etc/passwd',
      }),
    { code: 'InvalidConfiguration' },
  );
});

t.test('the form body', async (t) => {
  const body = stsForm('AssumeRole', {
    RoleArn: 'arn:aws:iam::1:role/a+b=c,d.e@f-g',
    RoleSessionName: 'x y',
    DurationSeconds: 900,
    ExternalId: undefined,
  });
  t.notMatch(body, /[+ ]/, 'spaces and plus signs are percent-encoded');
  t.same(Object.fromEntries(new URLSearchParams(body)), {
    Action: 'AssumeRole',
    Version: '2011-06-15',
    RoleArn: 'arn:aws:iam::1:role/a+b=c,d.e@f-g',
    RoleSessionName: 'x y',
    DurationSeconds: '900',
  });
});

interface Seen {
  method: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A loopback STS that answers from a script, one entry per request; the last entry repeats. */
async function scripted(t: Test, script: Array<(res: ServerResponse) => void>): Promise<{ url: URL; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', headers: req.headers, body });
      (script[Math.min(seen.length - 1, script.length - 1)] as (res: ServerResponse) => void)(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  t.teardown(() => server.closeAllConnections());
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), seen };
}

const xml = (status: number, body: string) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'text/xml' });
  res.end(body);
};
const fail = (status: number, code: string) =>
  xml(status, errorBody({ type: status >= 500 ? 'Receiver' : 'Sender', code, message: `injected ${code}` }, 'r'));
const success = xml(200, successBody({ ...WEB_IDENTITY, expiration: new Date(Date.now() + 3600_000) }, 'r'));

function call(url: URL, over: Partial<StsCall> = {}): Promise<Awaited<ReturnType<typeof callSts>>> {
  return callSts({
    action: 'AssumeRoleWithWebIdentity',
    params: {
      RoleArn: 'arn:aws:iam::111122223333:role/dev',
      RoleSessionName: 'credport-x',
      WebIdentityToken: 'jwt',
      DurationSeconds: 3600,
    },
    url,
    region: 'us-east-1',
    limits: { deadlineMs: 1000, maxBodyBytes: 64 * 1024 },
    maxAttempts: 3,
    skew: new ClockSkew(),
    now: Date.now,
    random: () => 0,
    ...over,
  });
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

t.test('a call: the request as sent', async (t) => {
  const s = await scripted(t, [success]);
  const out = await call(s.url);
  t.equal(out.credentials.AccessKeyId, WEB_IDENTITY.accessKeyId);
  t.equal(out.status, 200);
  const [req] = s.seen;
  t.equal(req?.method, 'POST');
  t.match(req?.headers['content-type'], /^application\/x-www-form-urlencoded/);
  t.equal(req?.headers['content-length'], String(Buffer.byteLength(req?.body ?? '')), 'a length, not chunked');
  t.equal(req?.headers.authorization, undefined, 'AssumeRoleWithWebIdentity is unsigned');
  t.match(Object.fromEntries(new URLSearchParams(req?.body)), {
    Action: 'AssumeRoleWithWebIdentity',
    Version: '2011-06-15',
    WebIdentityToken: 'jwt',
  });

  const signed = await scripted(t, [xml(200, assumeRoleBody({ ...WEB_IDENTITY, expiration: new Date(Date.now() + 900_000) }, 'r'))]);
  await call(signed.url, {
    action: 'AssumeRole',
    params: { RoleArn: 'arn:aws:iam::111122223333:role/dev', RoleSessionName: 'x1' },
    credentials: { accessKeyId: 'ASIASOURCE', secretAccessKey: 'sk', sessionToken: 'st' },
  });
  const h = signed.seen[0]?.headers ?? {};
  t.match(
    h.authorization,
    /^AWS4-HMAC-SHA256 Credential=ASIASOURCE\/\d{8}\/us-east-1\/sts\/aws4_request, SignedHeaders=[a-z;-]*host[a-z;-]*, Signature=[0-9a-f]{64}$/,
  );
  t.equal(h['x-amz-security-token'], 'st');
});

t.test('a call: retried inside the call as the SDK retried', async (t) => {
  const cases: Array<[string, Array<(res: ServerResponse) => void>, number, string | undefined]> = [
    ['503 twice, then credentials', [fail(503, 'ServiceUnavailable'), fail(503, 'ServiceUnavailable'), success], 3, undefined],
    ['500 InternalFailure', [fail(500, 'InternalFailure')], 3, 'InternalFailure'],
    ['Throttling (400)', [fail(400, 'Throttling'), success], 2, undefined],
    ['429 without a document', [(res) => res.writeHead(429).end()], 3, 'UpstreamError'],
    ['AccessDenied: not retried', [fail(403, 'AccessDenied')], 1, 'AccessDenied'],
    ['InvalidIdentityToken: not retried', [fail(400, 'InvalidIdentityToken')], 1, 'InvalidIdentityToken'],
    ['IDPCommunicationError: to the refresher, not retried here', [fail(400, 'IDPCommunicationError')], 1, 'IDPCommunicationError'],
    ['a 200 that is not STS: not retried', [xml(200, '{"message":"proxy"}')], 1, 'MalformedResponse'],
    ['a 200 ErrorResponse', [xml(200, errorBody({ type: 'Sender', code: 'AccessDenied', message: 'x' }, 'r'))], 1, 'AccessDenied'],
    ['a 200 of another document', [xml(200, '<html><body>hi</body></html>')], 1, 'MalformedResponse'],
  ];
  for (const [name, script, requests, code] of cases) {
    const s = await scripted(t, script);
    if (code === undefined) t.ok((await call(s.url)).credentials.AccessKeyId, `${name}: credentials`);
    else t.equal((await failure(call(s.url))).code, code, `${name}: ${code}`);
    t.equal(s.seen.length, requests, `${name}: ${requests} request(s)`);
  }
  const once = await scripted(t, [fail(503, 'ServiceUnavailable')]);
  t.equal((await failure(call(once.url, { maxAttempts: 1 }))).code, 'ServiceUnavailable');
  t.equal(once.seen.length, 1, 'maxAttempts 1: one request');
});

t.test('a call: limits end it without a retry; the network is retried', async (t) => {
  const stall = await scripted(t, [(res) => res.writeHead(200, { 'content-type': 'text/xml', 'content-length': '1000' }).write('<A')]);
  const e = await failure(call(stall.url, { limits: { deadlineMs: 300, maxBodyBytes: 64 * 1024 } }));
  t.equal(e.code, 'UpstreamTimeout');
  t.equal(stall.seen.length, 1, 'a passed deadline is not retried inside the call');
  const flood = await scripted(t, [xml(200, `<A>${'x'.repeat(70 * 1024)}</A>`)]);
  t.equal((await failure(call(flood.url))).code, 'ResponseTooLarge');
  t.equal(flood.seen.length, 1);
  const closed = await scripted(t, [success]);
  const refused = await failure(call(new URL('http://127.0.0.1:1/')));
  t.match(refused, { code: 'UpstreamUnreachable', message: /ECONNREFUSED/, retryable: true });
  const abort = new AbortController();
  abort.abort();
  t.equal((await failure(call(closed.url, { signal: abort.signal }))).code, 'Aborted');
});

t.test("AssumeRole against an emulator whose clock is 20 min ahead: re-signed with STS's time", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-sts-skew-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'issuer'));
  let ahead = 0;
  const emulator = await startEmulator({ issuerDir: join(dir, 'issuer'), now: () => Date.now() + ahead });
  t.teardown(() => emulator.close());
  const signer = FileKeySigner.create(join(dir, 'key.pem'));
  exportIssuer(join(dir, 'issuer'), emulator.issuerBaseUrl, publishedJwk(signer.publicJwk(), signer.thumbprint));
  emulator.createOpenIDConnectProvider({ url: emulator.issuerBaseUrl, clientIds: ['sts.amazonaws.com'] });
  const host = emulator.issuerBaseUrl.replace(/^https?:\/\//, '');
  const SOURCE = 'arn:aws:iam::111122223333:role/source';
  const TARGET = 'arn:aws:iam::444455556666:role/target';
  emulator.createRole({
    arn: SOURCE,
    trust: { providerUrl: emulator.issuerBaseUrl, conditions: { StringEquals: { [`${host}:sub`]: defaultSubject(signer) } } },
  });
  emulator.createRole({ arn: TARGET, trust: { principalArns: [SOURCE] } });
  const source = new AwsOidcProvider({
    signer,
    issuer: emulator.issuerBaseUrl,
    subject: defaultSubject(signer),
    audience: 'sts.amazonaws.com',
    tokenLifetimeSeconds: 300,
    roleArn: SOURCE,
    region: 'us-east-1',
    durationSeconds: 3600,
    roleSessionName: 'skew-source',
    stsEndpoint: emulator.stsEndpoint,
    maxAttempts: 1,
  });
  const sourceCreds = await source.fetch();
  ahead = 20 * 60_000;
  const chained = new AwsAssumeRoleProvider({
    source: async () => sourceCreds,
    roleArn: TARGET,
    region: 'us-east-1',
    durationSeconds: 900,
    roleSessionName: 'skewed',
    stsEndpoint: emulator.stsEndpoint,
    maxAttempts: 1,
  });
  const before = emulator.stats.stsCalls;
  const creds = await chained.fetch();
  t.equal(emulator.stats.stsCalls - before, 2, 'refused once for its timestamp, then accepted: one attempt, re-signed');
  t.equal(emulator.issued(creds.accessKeyId)?.via, 'AssumeRole');
  const left = creds.expiration.getTime() - Date.now();
  t.ok(left > 13 * 60_000 && left <= 15 * 60_000, `the expiration is in local time (${Math.round(left / 1000)} s left of 900)`);
  const again = await chained.fetch();
  t.equal(emulator.stats.stsCalls - before, 3, 'the next call is signed with the learnt offset at once');
  t.ok(again.accessKeyId);
});
