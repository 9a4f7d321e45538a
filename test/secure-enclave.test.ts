/**
 * The secure-enclave key backend. Off macOS it must report itself unavailable
 * with a reason and refuse every call with a typed error. On a Mac it creates
 * a key in the Secure Enclave, signs (verified with node:crypto and jose), and
 * removes it: `npm test -- --grep enclave`. The OSStatus / LocalAuthentication
 * mapping is native code shared by every platform, so it is checked here
 * everywhere.
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import t from 'tap';
import { compactVerify, importJWK } from 'jose';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { loadAddon } from '../daemon/keys/native/addon.js';
import { SecureEnclaveSigner, secureEnclaveAvailability } from '../daemon/keys/secure-enclave/signer.js';
import { enclaveAddon } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const isMac = process.platform === 'darwin';

// Each platform registers only its own test: a platform skip would count as a
// skip, and CI=true fails on any skip.
if (!isMac)
  t.test('secure enclave: unavailable off macOS, with a reason, and every call refused', async (t) => {
    const a = secureEnclaveAvailability();
    t.equal(a.available, false);
    if (!a.available) t.match(a.reason, /only on macOS/, `reason: ${a.reason}`);
    for (const [name, call] of [
      ['open', () => SecureEnclaveSigner.open({ tag: 'dev.credport.test' })],
      ['create', () => SecureEnclaveSigner.create({ tag: 'dev.credport.test', userPresence: false })],
      ['remove', () => SecureEnclaveSigner.remove({ tag: 'dev.credport.test' })],
    ] as const) {
      await t.rejects(
        call().then(() => undefined),
        { name: 'KeyBackendError', code: 'BACKEND_ERROR', message: /unavailable: .*only on macOS/ },
        name,
      );
    }
    const load = loadAddon();
    if (load.available) {
      t.equal(load.addon.secureEnclave.available, false, 'the addon itself says so too');
      t.match(load.addon.secureEnclave.reason, /only on macOS/);
      await t.rejects(load.addon.secureEnclave.open('dev.credport.test'), { code: 'BACKEND_ERROR' }, 'native open refused');
    }
  });

t.test('secure enclave: OSStatus and LocalAuthentication codes map to typed errors', needs(enclaveAddon), async (t) => {
  if (!assertPresent(t, enclaveAddon)) return;
  const load = loadAddon();
  if (!load.available) return;
  const { fromOsStatus, fromLocalAuth } = load.addon.errors;
  const os: [number, string, RegExp?][] = [
    [-128, 'USER_CANCELLED'], // errSecUserCanceled
    [-25293, 'PIN_INCORRECT'], // errSecAuthFailed
    [-25300, 'KEY_NOT_FOUND'], // errSecItemNotFound
    [-25299, 'KEY_EXISTS'], // errSecDuplicateItem
    [-34018, 'BACKEND_ERROR', /entitlement/], // errSecMissingEntitlement
    [-25308, 'BACKEND_ERROR', /no prompt can be shown/], // errSecInteractionNotAllowed
    [-4, 'BACKEND_ERROR', /no Secure Enclave/], // errSecUnimplemented
    [-50, 'INVALID_ARGUMENT'], // errSecParam
  ];
  for (const [status, code, msg] of os) {
    const m = fromOsStatus(status);
    t.equal(m.code, code, `OSStatus ${status} -> ${code}`);
    if (msg) t.match(m.message, msg);
  }
  const la: [number, string][] = [
    [-2, 'USER_CANCELLED'], // LAErrorUserCancel
    [-4, 'USER_CANCELLED'], // LAErrorSystemCancel
    [-1, 'PIN_INCORRECT'], // LAErrorAuthenticationFailed
    [-8, 'PIN_LOCKED'], // LAErrorBiometryLockout
    [-1004, 'BACKEND_ERROR'], // LAErrorNotInteractive
  ];
  for (const [code, expected] of la) t.equal(fromLocalAuth(code).code, expected, `LAError ${code} -> ${expected}`);
});

if (isMac)
  t.test('secure enclave: create, sign, verify, describe and remove a key on this Mac', async (t) => {
    const a = secureEnclaveAvailability();
    if (!a.available) {
      t.fail(`the Secure Enclave backend is unavailable on this Mac: ${a.reason}`);
      return;
    }
    const tag = `dev.credport.test.${randomBytes(6).toString('hex')}`;
    let s: SecureEnclaveSigner;
    try {
      s = await SecureEnclaveSigner.create({ tag, userPresence: false });
    } catch (err) {
      if (err instanceof KeyBackendError && err.osStatus === -34018) {
        // Not a bug in credport: this node binary lacks the keychain entitlement
        // persistent Secure Enclave keys need (docs/key-backends.md).
        t.skip(`this node binary has no keychain-access-groups entitlement: ${err.message}`, () => undefined);
        return;
      }
      throw err;
    }
    t.teardown(async () => {
      await s.close();
      await SecureEnclaveSigner.remove({ tag }).catch(() => undefined);
    });
    const d = s.describe();
    t.same(d, { backend: 'secure-enclave', location: `Secure Enclave key tagged "${tag}"`, userPresence: false });
    const data = Buffer.from('signed in the enclave');
    const sig = await s.sign(data);
    t.equal(sig.length, 64);
    t.ok(
      verify('sha256', data, { key: createPublicKey({ key: { ...s.publicJwk() }, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, sig),
      'node:crypto verifies',
    );
    const header = Buffer.from(JSON.stringify({ alg: 'ES256' })).toString('base64url');
    const input = `${header}.${Buffer.from('payload').toString('base64url')}`;
    const jws = `${input}.${Buffer.from(await s.sign(Buffer.from(input))).toString('base64url')}`;
    await compactVerify(jws, await importJWK(s.publicJwk(), 'ES256'));
    t.pass('jose verifies');

    const again = await SecureEnclaveSigner.open({ tag });
    t.equal(again.thumbprint, s.thumbprint, 'open finds the same key');
    t.equal(again.describe().userPresence, false, 'user presence read back from the key');
    await t.rejects(
      SecureEnclaveSigner.create({ tag, userPresence: false }),
      { code: 'KEY_EXISTS' },
      'a second key with the tag is refused',
    );
    await SecureEnclaveSigner.remove({ tag });
    await t.rejects(SecureEnclaveSigner.open({ tag }), { code: 'KEY_NOT_FOUND' }, 'gone after remove');
    await t.rejects(SecureEnclaveSigner.remove({ tag }), { code: 'KEY_NOT_FOUND' }, 'removing twice');
  });
