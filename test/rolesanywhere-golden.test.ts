// SigV4-X509 golden vectors: a fixed RSA key, chain and request (test/fixtures/rolesanywhere/, made once
// by scripts/gen-rolesanywhere-vectors.ts) must give the committed canonical request, string to sign,
// signature and Authorization header byte for byte. Independent paths check the same bytes: the
// emulator's server-side canonicalization, botocore's SigV4 canonical request, and the signature
// verified with node's crypto and with openssl.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCertificateChain } from '../daemon/clouds/aws/rolesanywhere/certificates.js';
import {
  authorizationHeader,
  canonicalRequest,
  credentialScope,
  signRequest,
  stringToSign,
  type SigV4X509Input,
} from '../daemon/clouds/aws/rolesanywhere/sigv4-x509.js';
import { fromKeyFile } from '../daemon/x509/signing-key.js';
import { canonicalRequestOf, stringToSignOf, type ArrivedRequest } from '../emulator/sigv4-verify.js';
import { assertPresent, needs, tool } from './helpers/tools.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/rolesanywhere/', import.meta.url));
const read = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

interface VectorRequest {
  method: string;
  host: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
  amzDate: string;
  region: string;
}
const request = JSON.parse(read('request.json')) as VectorRequest;
const expected = {
  canonicalRequest: read('canonical-request.txt'),
  stringToSign: read('string-to-sign.txt'),
  signature: read('signature.hex'),
  authorization: read('authorization.txt'),
};

// Git keeps no file modes, so the committed key is copied to a 0600 file, as fromKeyFile demands.
const work = mkdtempSync(join(tmpdir(), 'credport-golden-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const keyPath = join(work, 'device.key');
writeFileSync(keyPath, readFileSync(join(FIXTURES, 'device.key')), { mode: 0o600 });
const key = fromKeyFile(keyPath);
const chain = loadCertificateChain(join(FIXTURES, 'device.pem'), join(FIXTURES, 'intermediate.pem'));
const input: SigV4X509Input = {
  ...request,
  algorithm: key.algorithm,
  certificate: chain.leaf.der,
  chain: chain.chain.map((c) => c.der),
  serial: chain.leaf.serialDecimal,
};

const python = tool(
  'python3 with botocore',
  () => spawnSync('python3', ['-c', 'import botocore.auth'], { stdio: 'ignore' }).status === 0,
  'apt-get install python3-botocore',
);
const openssl = tool('openssl', () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0, 'apt-get install openssl');

t.test('the fixture is what the vectors claim', async (t) => {
  t.equal(key.algorithm, 'AWS4-X509-RSA-SHA256');
  t.equal(chain.leaf.serialHex, '5f0e2d4c3b2a19080706050403020100');
  t.equal(chain.leaf.serialDecimal, BigInt('0x5f0e2d4c3b2a19080706050403020100').toString(10), 'serial as an unsigned decimal');
  t.equal(chain.chain.length, 1, 'one intermediate');
  t.match(expected.authorization, `Credential=${chain.leaf.serialDecimal}/20240501/eu-west-1/rolesanywhere/aws4_request, `);
});

t.test('canonical request, string to sign, signature and Authorization match byte for byte', async (t) => {
  const { canonicalRequest: canonical, signedHeaders } = canonicalRequest(input);
  t.equal(canonical, expected.canonicalRequest, 'canonical request');
  t.equal(signedHeaders, 'content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain', 'signed headers: lower-case, sorted, chain included');
  const scope = credentialScope(request.amzDate, request.region);
  t.equal(scope, '20240501/eu-west-1/rolesanywhere/aws4_request');
  t.equal(stringToSign(input.algorithm, request.amzDate, scope, canonical), expected.stringToSign, 'string to sign');

  const signed = await signRequest(input, key);
  t.equal(signed.canonicalRequest, expected.canonicalRequest);
  t.equal(signed.stringToSign, expected.stringToSign);
  t.equal(signed.signature, expected.signature, 'RSA PKCS#1 v1.5 is deterministic: the same signature');
  t.equal(signed.headers.authorization, expected.authorization, 'Authorization header');
  t.equal(authorizationHeader(input.algorithm, input.serial, scope, signedHeaders, expected.signature), expected.authorization);
  t.match(signed.signature, /^[0-9a-f]{512}$/, 'lower-case hex of a 2048-bit signature');

  // The headers carry base64 DER: the leaf in X-Amz-X509, the intermediate (never the leaf) in the chain.
  t.equal(signed.headers['x-amz-x509'], Buffer.from(chain.leaf.der).toString('base64'));
  t.equal(signed.headers['x-amz-x509-chain'], Buffer.from(chain.chain[0]?.der ?? []).toString('base64'));
  t.notMatch(signed.headers['x-amz-x509-chain'] ?? '', signed.headers['x-amz-x509'] ?? 'x', 'the chain header does not contain the leaf');
  t.match(
    signed.queryString,
    /^profileArn=arn%3Aaws%3Arolesanywhere%3Aeu-west-1%3A111122223333%3Aprofile%2F.*&roleArn=.*&trustAnchorArn=/,
    'query: SigV4-encoded, sorted',
  );
});

t.test('no chain: no X-Amz-X509-Chain header and it is not signed', async (t) => {
  const { canonicalRequest: canonical, signedHeaders } = canonicalRequest({ ...input, chain: [] });
  t.equal(signedHeaders, 'content-type;host;x-amz-date;x-amz-x509');
  t.notMatch(canonical, 'x-amz-x509-chain');
});

t.test('the signature verifies with the certificate public key (node crypto)', async (t) => {
  const cert = new X509Certificate(read('device.pem'));
  t.ok(cryptoVerify('sha256', Buffer.from(expected.stringToSign), cert.publicKey, Buffer.from(expected.signature, 'hex')));
  t.notOk(
    cryptoVerify('sha256', Buffer.from(`${expected.stringToSign} `), cert.publicKey, Buffer.from(expected.signature, 'hex')),
    'and only for that string',
  );
});

t.test('the emulator rebuilds the same canonical request from the wire', async (t) => {
  const signed = await signRequest(input, key);
  const headers = new Map<string, string[]>(Object.entries(signed.headers).map(([k, v]) => [k, [v]]));
  const arrived: ArrivedRequest = {
    method: 'POST',
    rawUrl: `${request.path}?${signed.queryString}`,
    headers,
    body: Buffer.from(request.body),
  };
  const names = expected.authorization.match(/SignedHeaders=([^,]+)/)?.[1]?.split(';') ?? [];
  const canonical = canonicalRequestOf(arrived, names);
  t.equal(canonical, expected.canonicalRequest, 'server-side canonicalization agrees');
  t.equal(
    stringToSignOf(input.algorithm, request.amzDate, credentialScope(request.amzDate, request.region), canonical),
    expected.stringToSign,
  );
  // A query in another order and with lower-case escapes still canonicalizes the same way.
  const shuffled = Object.entries(request.query)
    .reverse()
    .map(([k, v]) => `${k}=${encodeURIComponent(v).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`)
    .join('&');
  t.equal(
    canonicalRequestOf({ ...arrived, rawUrl: `${request.path}?${shuffled}` }, names),
    expected.canonicalRequest,
    'query order and escape case do not matter',
  );
});

// botocore builds SigV4 canonical requests for every AWS service; with the same headers and parameters
// it must produce the same bytes (its string to sign differs only in the algorithm line).
const BOTOCORE = `
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
v = json.load(sys.stdin)
req = AWSRequest(method=v['method'], url='https://' + v['host'] + v['path'], params=v['query'], headers=v['headers'], data=v['body'].encode('utf-8'))
req.context['timestamp'] = v['amzDate']
auth = SigV4Auth(Credentials('unused', 'unused'), 'rolesanywhere', v['region'])
canonical = auth.canonical_request(req)
sts = auth.string_to_sign(req, canonical)
json.dump({'canonical': canonical, 'stringToSign': sts}, sys.stdout)
`;

t.test('botocore computes the same canonical request', needs(python), async (t) => {
  if (!assertPresent(t, python)) return;
  const signed = await signRequest(input, key);
  const { authorization: _auth, ...headers } = signed.headers;
  const run = spawnSync('python3', ['-c', BOTOCORE], {
    input: JSON.stringify({ ...request, headers }),
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { canonical: string; stringToSign: string };
  t.equal(out.canonical, expected.canonicalRequest, 'botocore canonical request');
  const [, ...rest] = out.stringToSign.split('\n');
  t.equal(['AWS4-X509-RSA-SHA256', ...rest].join('\n'), expected.stringToSign, 'botocore scope and hash');
});

t.test('openssl verifies the signature over the string to sign', needs(openssl), async (t) => {
  if (!assertPresent(t, openssl)) return;
  const pub = new X509Certificate(read('device.pem')).publicKey.export({ type: 'spki', format: 'pem' });
  writeFileSync(join(work, 'pub.pem'), pub);
  writeFileSync(join(work, 'sts.txt'), expected.stringToSign);
  writeFileSync(join(work, 'sig.bin'), Buffer.from(expected.signature, 'hex'));
  const run = spawnSync(
    'openssl',
    ['dgst', '-sha256', '-verify', join(work, 'pub.pem'), '-signature', join(work, 'sig.bin'), join(work, 'sts.txt')],
    { encoding: 'utf8' },
  );
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /Verified OK/);
  const chainCheck = spawnSync(
    'openssl',
    [
      'verify',
      '-CAfile',
      join(FIXTURES, 'root.pem'),
      '-untrusted',
      join(FIXTURES, 'intermediate.pem'),
      '-attime',
      String(Date.parse('2024-05-01T12:00:00Z') / 1000),
      join(FIXTURES, 'device.pem'),
    ],
    { encoding: 'utf8' },
  );
  t.equal(chainCheck.status, 0, `the fixture chain is valid: ${chainCheck.stderr}`);
});
