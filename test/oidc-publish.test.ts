/**
 * `credport oidc publish` and `oidc revoke` against moto's S3 server: real processes, real SDK,
 * real conditional writes. Twenty devices publishing at once must end with twenty keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CloudFrontClient, CreateDistributionCommand, GetInvalidationCommand } from '@aws-sdk/client-cloudfront';
import t from 'tap';
import { runCliAsync } from './helpers/cli.js';
import { type Device, makeDevice } from './helpers/fleet.js';
import { MOTO_ENV, type Moto, startMoto } from './helpers/moto.js';
import { assertPresent, motoServer, needs } from './helpers/tools.js';

const ISSUER = 'https://d111111abcdef8.cloudfront.net/fleet';
const BUCKET = 'credport-fleet';

t.test('oidc publish and revoke against S3 (moto)', needs(motoServer), async (t) => {
  if (!assertPresent(t, motoServer)) return;
  const dir = mkdtempSync(join(tmpdir(), 'credport-publish-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const moto: Moto = await startMoto();
  t.teardown(() => moto.close());
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint: moto.url,
    forcePathStyle: true,
    credentials: { accessKeyId: MOTO_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: MOTO_ENV.AWS_SECRET_ACCESS_KEY },
  });
  t.teardown(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));

  const get = async (key: string) => {
    try {
      const o = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      return { text: await o.Body!.transformToString(), etag: o.ETag };
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey') return undefined;
      throw err;
    }
  };
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const kidsAt = async (prefix: string) =>
    (JSON.parse((await get(`${prefix}/.well-known/jwks.json`))!.text).keys as Array<{ kid: string }>).map((k) => k.kid).sort();
  const cli = (args: string[]) => runCliAsync([...args, '--endpoint-url', moto.url], MOTO_ENV, 120_000);

  await t.test('the premise: moto refuses a stale If-Match and a second If-None-Match with 412', async (t) => {
    const key = 'premise/object.json';
    const first = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: '1', IfNoneMatch: '*' }));
    const again = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: '2', IfNoneMatch: '*' })).catch((e) => e);
    t.equal(again.$metadata?.httpStatusCode, 412, 'If-None-Match: * on an existing object');
    const stale = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: '3', IfMatch: '"0000"' })).catch((e) => e);
    t.equal(stale.$metadata?.httpStatusCode, 412, 'If-Match with an old ETag');
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: '4', IfMatch: first.ETag }));
    t.equal((await get(key))?.text, '4', 'If-Match with the current ETag writes');
  });

  const devices: Device[] = [];
  for (let i = 0; i < 20; i++) devices.push(makeDevice(dir, `dev${i}`, ISSUER, `publish_bucket = "s3://${BUCKET}/fleet"\n`));

  await t.test('twenty devices publishing at once end with twenty keys', async (t) => {
    const results = await Promise.all(devices.map((d) => cli(['oidc', 'publish', '-c', d.config])));
    results.forEach((r, i) => t.equal(r.status, 0, `device ${i} published: ${r.stderr.trim()}`));
    t.same(await kidsAt('fleet'), devices.map((d) => d.kid).sort(), 'every key is in the JWKS, none lost');
    const discovery = JSON.parse((await get('fleet/.well-known/openid-configuration'))!.text);
    t.equal(discovery.issuer, ISSUER);
    t.equal(discovery.jwks_uri, `${ISSUER}/.well-known/jwks.json`);
    const retried = results.filter((r) => /^published:/m.test(r.stdout)).length;
    t.equal(retried, 20, 'each device reports its own write');
  });

  await t.test('publishing again changes nothing', async (t) => {
    const before = await get('fleet/.well-known/jwks.json');
    const r = await cli(['oidc', 'publish', '-c', devices[0]!.config]);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^unchanged: s3:\/\/credport-fleet\/fleet \(20 keys\)/);
    t.equal((await get('fleet/.well-known/jwks.json'))?.etag, before?.etag, 'not rewritten');
  });

  await t.test('revoke removes exactly one key; a kid that is not there changes nothing', async (t) => {
    const gone = devices[3]!.kid;
    const r = await cli(['oidc', 'revoke', gone, '-c', devices[0]!.config]);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, new RegExp(`revoked ${gone}: s3://credport-fleet/fleet \\(19 keys\\)`));
    t.same(
      await kidsAt('fleet'),
      devices
        .filter((d) => d.kid !== gone)
        .map((d) => d.kid)
        .sort(),
    );
    const before = await get('fleet/.well-known/jwks.json');
    const again = await cli(['oidc', 'revoke', gone, '-c', devices[0]!.config]);
    t.equal(again.status, 1);
    t.match(again.stderr, /not in the JWKS; nothing was changed/);
    t.equal((await get('fleet/.well-known/jwks.json'))?.etag, before?.etag);
    const bad = await cli(['oidc', 'revoke', '../../x', '-c', devices[0]!.config]);
    t.equal(bad.status, 2, 'a kid that is not a thumbprint is a usage error');
  });

  await t.test('revoke and publish at once: both land', async (t) => {
    const back = devices[3]!;
    const out = devices[4]!;
    const [a, b] = await Promise.all([
      cli(['oidc', 'publish', '-c', back.config]),
      cli(['oidc', 'revoke', out.kid, '-c', devices[0]!.config]),
    ]);
    t.equal(a.status, 0, a.stderr);
    t.equal(b.status, 0, b.stderr);
    t.same(
      await kidsAt('fleet'),
      devices
        .filter((d) => d.kid !== out.kid)
        .map((d) => d.kid)
        .sort(),
    );
  });

  await t.test('key rotate publishes the new key before the old one leaves, and keeps the others', async (t) => {
    const d = devices[5]!;
    const others = (await kidsAt('fleet')).filter((k) => k !== d.kid);
    const r = await cli(['key', 'rotate', '-c', d.config, '--grace', '2d']);
    t.equal(r.status, 0, r.stderr);
    const newKid = /switched from \S+ to (\S+);/.exec(r.stdout)?.[1] ?? '';
    t.not(newKid, '');
    t.same(await kidsAt('fleet'), [...others, d.kid, newKid].sort(), 'old and new both published, the fleet untouched');
    const early = await cli(['key', 'rotate', '--finish', '-c', d.config]);
    t.equal(early.status, 1);
    t.same(await kidsAt('fleet'), [...others, d.kid, newKid].sort());
    const done = await cli(['key', 'rotate', '--finish', '--now', '-c', d.config]);
    t.equal(done.status, 0, done.stderr);
    t.same(await kidsAt('fleet'), [...others, newKid].sort(), 'only the old key left');
  });

  await t.test('a change is invalidated in CloudFront: the two paths below the issuer URL', async (t) => {
    const cf = new CloudFrontClient({
      region: 'us-east-1',
      endpoint: moto.url,
      credentials: { accessKeyId: MOTO_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: MOTO_ENV.AWS_SECRET_ACCESS_KEY },
    });
    t.teardown(() => cf.destroy());
    const dist = await cf.send(
      new CreateDistributionCommand({
        DistributionConfig: {
          CallerReference: 'credport-fleet',
          Comment: '',
          Enabled: true,
          Origins: {
            Quantity: 1,
            Items: [{ Id: 'issuer', DomainName: `${BUCKET}.s3.amazonaws.com`, S3OriginConfig: { OriginAccessIdentity: '' } }],
          },
          DefaultCacheBehavior: {
            TargetOriginId: 'issuer',
            ViewerProtocolPolicy: 'https-only',
            ForwardedValues: { QueryString: false, Cookies: { Forward: 'none' } },
            MinTTL: 0,
            TrustedSigners: { Enabled: false, Quantity: 0 },
          },
        },
      }),
    );
    const id = dist.Distribution!.Id!;
    const d = makeDevice(dir, 'cdn', ISSUER);
    // The SDK's own per-service endpoint variable: the product has no CloudFront endpoint flag.
    const r = await runCliAsync(
      ['oidc', 'publish', `s3://${BUCKET}/fleet`, '--distribution-id', id, '-c', d.config, '--endpoint-url', moto.url],
      { ...MOTO_ENV, AWS_ENDPOINT_URL_CLOUDFRONT: moto.url },
      120_000,
    );
    t.equal(r.status, 0, r.stderr);
    const inv = /CloudFront invalidation (\S+) created/.exec(r.stdout)?.[1];
    t.ok(inv, r.stdout);
    const got = await cf.send(new GetInvalidationCommand({ DistributionId: id, Id: inv! }));
    t.same([...(got.Invalidation?.InvalidationBatch?.Paths?.Items ?? [])].sort(), [
      '/fleet/.well-known/jwks.json',
      '/fleet/.well-known/openid-configuration',
    ]);
    const again = await runCliAsync(
      ['oidc', 'publish', `s3://${BUCKET}/fleet`, '--distribution-id', id, '-c', d.config, '--endpoint-url', moto.url],
      { ...MOTO_ENV, AWS_ENDPOINT_URL_CLOUDFRONT: moto.url },
      120_000,
    );
    t.equal(again.status, 0);
    t.notMatch(again.stdout, /invalidation/, 'nothing changed, nothing invalidated');
    const revoked = await runCliAsync(
      ['oidc', 'revoke', d.kid, `s3://${BUCKET}/fleet`, '--distribution-id', 'E0NOSUCHDIST0', '-c', d.config, '--endpoint-url', moto.url],
      { ...MOTO_ENV, AWS_ENDPOINT_URL_CLOUDFRONT: moto.url },
      120_000,
    );
    t.equal(revoked.status, 0, 'a failed invalidation does not undo the written change');
    t.match(revoked.stderr, /warning: CloudFront invalidation of E0NOSUCHDIST0 failed/);
  });

  await t.test('a malformed JWKS is refused and left as it is', async (t) => {
    for (const body of ['{"keys": 5}', 'not json', '{"keys":[{"kid":7}]}', '[]']) {
      await put('broken/.well-known/jwks.json', body);
      const before = await get('broken/.well-known/jwks.json');
      const r = await cli(['oidc', 'publish', `s3://${BUCKET}/broken`, '-c', devices[0]!.config]);
      t.equal(r.status, 3, `${body}: exit 3`);
      t.match(r.stderr, /JWKS s3:\/\/credport-fleet\/broken\/\.well-known\/jwks\.json/, 'the error names the object');
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      t.equal((await get('broken/.well-known/jwks.json'))?.etag, before?.etag, 'nothing written');
    }
    t.equal(await get('broken/.well-known/openid-configuration'), undefined, 'no discovery document either');
  });

  await t.test('an oversized JWKS is not read whole', async (t) => {
    await put('huge/.well-known/jwks.json', `{"keys":[],"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`);
    const r = await cli(['oidc', 'publish', `s3://${BUCKET}/huge`, '-c', devices[0]!.config]);
    t.equal(r.status, 1);
    t.match(r.stderr, /huge\/\.well-known\/jwks\.json/);
    t.notMatch(r.stderr, /xxxxxxxx/, 'the body is not echoed');
  });

  await t.test('another issuer in the same place is refused', async (t) => {
    await put(
      'other/.well-known/openid-configuration',
      JSON.stringify({ issuer: 'https://elsewhere.example', jwks_uri: 'https://elsewhere.example/.well-known/jwks.json' }),
    );
    const r = await cli(['oidc', 'publish', `s3://${BUCKET}/other`, '-c', devices[0]!.config]);
    t.equal(r.status, 3);
    t.match(r.stderr, /belongs to issuer https:\/\/elsewhere\.example/);
    t.equal(await get('other/.well-known/jwks.json'), undefined);
  });

  await t.test('the 101st key is refused with the way out; a key already there may be republished', async (t) => {
    const synthetic = Array.from({ length: 99 }, () => ({
      kty: 'EC',
      crv: 'P-256',
      x: randomBytes(32).toString('base64url'),
      y: randomBytes(32).toString('base64url'),
      kid: randomBytes(32).toString('base64url'),
      use: 'sig',
      alg: 'ES256',
    }));
    await put('full/.well-known/jwks.json', JSON.stringify({ keys: synthetic }));
    const hundredth = await cli(['oidc', 'publish', `s3://${BUCKET}/full`, '-c', devices[0]!.config]);
    t.equal(hundredth.status, 0, `the 100th key fits: ${hundredth.stderr}`);
    t.match(hundredth.stdout, /\(100 keys\)/);
    const before = await get('full/.well-known/jwks.json');
    const r = await cli(['oidc', 'publish', `s3://${BUCKET}/full`, '-c', devices[1]!.config]);
    t.equal(r.status, 1);
    t.match(r.stderr, /already holds 100 keys and AWS IAM reads at most 100/);
    t.match(r.stderr, /[Ss]hard/);
    t.match(r.stderr, /Roles Anywhere/);
    t.equal((await get('full/.well-known/jwks.json'))?.etag, before?.etag, 'nothing written');
    const same = await cli(['oidc', 'publish', `s3://${BUCKET}/full`, '-c', devices[0]!.config]);
    t.equal(same.status, 0, 'a device already in a full set is not refused');
  });

  await t.test('bad places and missing credentials are one-line errors', async (t) => {
    const noBucket = await cli(['oidc', 'publish', 's3://No_Such', '-c', devices[0]!.config]);
    t.equal(noBucket.status, 2);
    const missing = await cli(['oidc', 'publish', 's3://credport-no-such-bucket', '-c', devices[0]!.config]);
    t.equal(missing.status, 1);
    t.match(missing.stderr, /NoSuchBucket/);
    const noCreds = await runCliAsync(
      ['oidc', 'publish', `s3://${BUCKET}/fleet`, '-c', devices[0]!.config, '--endpoint-url', moto.url],
      { HOME: dir, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' },
      120_000,
    );
    t.equal(noCreds.status, 1);
    t.match(noCreds.stderr, /credentials/i);
    t.notMatch(noCreds.stderr, /\n.+\n.+\n/, 'short');
  });
});
