/**
 * Provider aws-oidc against the emulator through the real STS client: success,
 * STS's own errors kept with code and message, transport faults classified.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startEmulator } from '../emulator/index.js';
import { defaultSubject } from '../daemon/identity/jwt.js';
import { exportIssuer, publishedJwk } from '../daemon/identity/issuer-documents.js';
import { FileKeySigner } from '../daemon/keys/file/signer.js';
import { AwsOidcProvider } from '../daemon/clouds/aws/oidc/provider.js';
import { defaultSessionName, isValidSessionName } from '../daemon/clouds/aws/oidc/session-name.js';
import { ProviderError } from '../daemon/providers/types.js';

const ROLE = 'arn:aws:iam::111122223333:role/dev';

t.test('session names are valid and identify the device', async (t) => {
  const thumb = 'AbC-_123xyzAbC-_123xyzAbC-_123xyzAbC-_123xy';
  t.equal(defaultSessionName(thumb, 'my-laptop.local'), 'credport-my-laptop-AbC-_123');
  t.ok(isValidSessionName(defaultSessionName(thumb, 'host with spaces/and:colons')));
  t.equal(defaultSessionName(thumb, 'host with/slash'), 'credport-host-with-slash-AbC-_123', 'no slash survives');
  const long = defaultSessionName(thumb, 'x'.repeat(200));
  t.ok(long.length <= 64 && isValidSessionName(long), 'long host names are cut to fit 64');
  t.ok(isValidSessionName(defaultSessionName(thumb, '')), 'empty host still valid');
});

t.test('aws-oidc against the emulator', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-prov-'));
  mkdirSync(join(dir, 'issuer'));
  const emulator = await startEmulator({ issuerDir: join(dir, 'issuer') });
  t.teardown(() => emulator.close());
  const signer = FileKeySigner.create(join(dir, 'key.pem'));
  const issuer = emulator.issuerBaseUrl;
  exportIssuer(join(dir, 'issuer'), issuer, publishedJwk(signer.publicJwk(), signer.thumbprint));
  emulator.createOpenIDConnectProvider({ url: issuer, clientIds: ['sts.amazonaws.com'] });
  const host = issuer.replace(/^http:\/\//, '');
  emulator.createRole({
    arn: ROLE,
    trust: { providerUrl: issuer, conditions: { StringEquals: { [`${host}:sub`]: defaultSubject(signer) } } },
  });

  const make = (over: Partial<ConstructorParameters<typeof AwsOidcProvider>[0]> = {}) => {
    const p = new AwsOidcProvider({
      signer,
      issuer,
      subject: defaultSubject(signer),
      audience: 'sts.amazonaws.com',
      tokenLifetimeSeconds: 300,
      roleArn: ROLE,
      region: 'us-east-1',
      durationSeconds: 3600,
      roleSessionName: 'credport-test-session',
      stsEndpoint: emulator.stsEndpoint,
      maxAttempts: 1,
      requestTimeoutMs: 1000,
      ...over,
    });
    t.teardown(() => p.destroy());
    return p;
  };
  const failure = async (p: AwsOidcProvider): Promise<ProviderError> => {
    try {
      await p.fetch();
    } catch (err) {
      if (err instanceof ProviderError) return err;
      throw err;
    }
    throw new Error('expected a failure');
  };

  t.test("success: the emulator's credentials, account and role", async (t) => {
    const c = await make().fetch();
    const issued = emulator.issued(c.accessKeyId);
    t.ok(issued, 'issued by the emulator');
    t.equal(c.secretAccessKey, issued?.secretAccessKey);
    t.equal(c.sessionToken, issued?.sessionToken);
    t.equal(c.expiration.getTime(), issued?.expiration.getTime());
    t.equal(c.accountId, '111122223333');
    t.equal(c.roleArn, ROLE);
    t.equal(issued?.sessionName, 'credport-test-session');
    t.equal(issued?.subject, defaultSubject(signer));
  });

  t.test('STS errors keep their code and message', async (t) => {
    const wrongAud = await failure(make({ audience: 'someone-else' }));
    t.equal(wrongAud.code, 'InvalidIdentityToken');
    t.match(wrongAud.message, /audience/i);
    t.equal(wrongAud.retryable, false);
    const wrongSub = await failure(make({ subject: 'device:other' }));
    t.equal(wrongSub.code, 'AccessDenied');
    t.match(wrongSub.message, /Not authorized to perform sts:AssumeRoleWithWebIdentity/);
    const unknownIssuer = await failure(make({ issuer: `${issuer}/elsewhere` }));
    t.equal(unknownIssuer.code, 'InvalidIdentityToken');
    const tooLong = await failure(make({ durationSeconds: 7200 }));
    t.equal(tooLong.code, 'ValidationError');
    t.match(tooLong.message, /MaxSessionDuration/);
  });

  t.test('expired token: ExpiredTokenException', async (t) => {
    // The device clock is an hour behind: its token expired long ago by STS's clock.
    const e = await failure(make({ now: () => Date.now() - 3600_000 }));
    t.equal(e.code, 'ExpiredTokenException');
  });

  t.test('faults are classified and retryable', async (t) => {
    const cases: Array<[Parameters<typeof emulator.setFault>[0], string]> = [
      [{ kind: 'unavailable' }, 'UpstreamUnreachable'],
      [{ kind: 'malformed' }, 'MalformedResponse'],
      [{ kind: 'truncated' }, 'MalformedResponse'],
      [{ kind: 'error', status: 400, code: 'Throttling', message: 'Rate exceeded', type: 'Sender' }, 'Throttling'],
      [{ kind: 'error', status: 500, code: 'InternalFailure', message: 'oops', type: 'Receiver' }, 'InternalFailure'],
      [{ kind: 'error', status: 400, code: 'IDPCommunicationError', message: 'idp timeout', type: 'Sender' }, 'IDPCommunicationError'],
      [{ kind: 'delay', ms: 2500 }, 'UpstreamTimeout'],
    ];
    for (const [fault, code] of cases) {
      emulator.setFault(fault, { times: 1 });
      const e = await failure(make());
      t.equal(e.code, code, `${fault?.kind} ${'code' in (fault ?? {}) ? (fault as { code: string }).code : ''} -> ${code}`);
      t.equal(e.retryable, true, `${code} is retryable`);
      emulator.setFault(null);
    }
    t.ok(await make().fetch(), 'works again once the fault is gone');
  });

  t.test('STS down entirely', async (t) => {
    const e = await failure(make({ stsEndpoint: 'http://127.0.0.1:1' }));
    t.equal(e.code, 'UpstreamUnreachable');
    t.match(e.message, /ECONNREFUSED/);
  });
});
