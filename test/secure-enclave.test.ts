/**
 * The secure-enclave key backend. Everywhere: off macOS it reports itself unavailable with a reason and
 * refuses every call with a typed error; the native error tables (OSStatus, LocalAuthentication,
 * CryptoTokenKit) map to the typed codes; the key file is written and read as a secret; a user-presence
 * key that cannot prompt closes its gate instead of queueing prompts. On a Mac with a Secure Enclave it
 * creates a key outside the keychain, signs (verified with node:crypto and jose), reopens it from its
 * file and removes it. No Mac runs it in this project's CI (docs/key-backends.md).
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { compactVerify, importJWK } from 'jose';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { loadAddon } from '../daemon/keys/native/addon.js';
import { createEnclaveKeyFile, readEnclaveKeyFile } from '../daemon/keys/secure-enclave/key-file.js';
import { PromptGate } from '../daemon/keys/secure-enclave/prompt-gate.js';
import { SecureEnclaveSigner, secureEnclaveAvailability } from '../daemon/keys/secure-enclave/signer.js';
import { runCli } from './helpers/cli.js';
import { enclaveAddon } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const isMac = process.platform === 'darwin';
const dir = mkdtempSync(join(tmpdir(), 'credport-se-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const POINT = Buffer.concat([Buffer.from([0x04]), randomBytes(64)]);

// Each platform registers only its own test: a platform skip would count as a
// skip, and CI=true fails on any skip.
if (!isMac)
  t.test('secure enclave: unavailable off macOS, with a reason, and every call refused', async (t) => {
    const a = await secureEnclaveAvailability();
    t.equal(a.available, false);
    if (!a.available) t.match(a.reason, /only on macOS/, `reason: ${a.reason}`);
    const path = join(dir, 'absent.json');
    for (const [name, call] of [
      ['open', () => SecureEnclaveSigner.open({ path, userPresence: false })],
      ['create', () => SecureEnclaveSigner.create({ path, userPresence: false })],
      ['remove', () => SecureEnclaveSigner.remove({ path })],
    ] as const) {
      await t.rejects(
        call().then(() => undefined),
        { name: 'KeyBackendError', code: 'BACKEND_ERROR', message: /unavailable: .*only on macOS/ },
        name,
      );
    }
    t.notOk(existsSync(path), 'a refused create leaves no key file');
    const load = loadAddon();
    if (load.available) {
      t.equal(load.addon.secureEnclave.available, false, 'the addon itself says so too');
      t.match(load.addon.secureEnclave.reason, /only on macOS/);
      t.same(await load.addon.secureEnclave.probe(), { available: false, reason: load.addon.secureEnclave.reason }, 'the probe agrees');
      await t.rejects(load.addon.secureEnclave.open(Buffer.from('blob'), POINT, false), { code: 'BACKEND_ERROR' }, 'native open refused');
      await t.rejects(
        load.addon.secureEnclave.open(Buffer.from('blob'), POINT.subarray(1), false),
        { code: 'INVALID_ARGUMENT' },
        'a public key of the wrong size is refused before any native call',
      );
    }
  });

t.test('secure enclave: OSStatus, LocalAuthentication and CryptoTokenKit codes map to typed errors', needs(enclaveAddon), async (t) => {
  if (!assertPresent(t, enclaveAddon)) return;
  const load = loadAddon();
  if (!load.available) return;
  const { fromOsStatus, fromLocalAuth, fromCryptoTokenKit, codes } = load.addon.errors;
  t.ok(codes.includes('INTERACTION_NOT_ALLOWED'), 'the native code list has INTERACTION_NOT_ALLOWED');
  const os: [number, string, RegExp?][] = [
    [-128, 'USER_CANCELLED'], // errSecUserCanceled
    [-25293, 'PIN_INCORRECT'], // errSecAuthFailed
    [-25300, 'KEY_NOT_FOUND'], // errSecItemNotFound
    [-34018, 'BACKEND_ERROR', /entitlement/], // errSecMissingEntitlement: no longer expected, still explained
    [-25308, 'INTERACTION_NOT_ALLOWED', /no prompt can be shown/], // errSecInteractionNotAllowed
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
    [-1004, 'INTERACTION_NOT_ALLOWED'], // LAErrorNotInteractive
  ];
  for (const [code, expected] of la) t.equal(fromLocalAuth(code).code, expected, `LAError ${code} -> ${expected}`);
  const tk: [number, string, RegExp?][] = [
    [-4, 'USER_CANCELLED'], // TKErrorCodeCanceledByUser
    [-5, 'PIN_INCORRECT'], // TKErrorCodeAuthenticationFailed
    [-9, 'INTERACTION_NOT_ALLOWED'], // TKErrorCodeAuthenticationNeeded
    [-6, 'KEY_NOT_FOUND', /no longer accepts this key/], // TKErrorCodeObjectNotFound
    [-3, 'KEY_NOT_FOUND', /no longer accepts this key/], // TKErrorCodeCorruptedData
    [-7, 'BACKEND_ERROR', /no Secure Enclave/], // TKErrorCodeTokenNotFound
  ];
  for (const [code, expected, msg] of tk) {
    const m = fromCryptoTokenKit(code);
    t.equal(m.code, expected, `TKError ${code} -> ${expected}`);
    if (msg) t.match(m.message, msg);
  }
});

t.test('secure enclave: the key file is a secret, created once, checked when read', async (t) => {
  const path = join(dir, 'state', 'credport', 'secure-enclave-key.json');
  const tokenObject = randomBytes(300);
  createEnclaveKeyFile(path, { publicKey: POINT, tokenObject, userPresence: true });
  t.equal(statSync(path).mode & 0o777, 0o600, 'the file is 0600');
  t.equal(statSync(join(dir, 'state', 'credport')).mode & 0o777, 0o700, 'its new directory is 0700');
  const back = readEnclaveKeyFile(path);
  t.ok(back.publicKey.equals(POINT) && back.tokenObject.equals(tokenObject) && back.userPresence, 'read back as written');
  t.throws(() => createEnclaveKeyFile(path, { publicKey: POINT, tokenObject, userPresence: false }), { code: 'KEY_EXISTS' });
  t.ok(readEnclaveKeyFile(path).userPresence, 'an existing key file is never replaced');
  t.throws(() => readEnclaveKeyFile(join(dir, 'none.json')), { code: 'KEY_NOT_FOUND', message: /credport init/ });

  const bad = (name: string, text: string, mode = 0o600) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode });
    chmodSync(p, mode);
    return p;
  };
  t.throws(() => readEnclaveKeyFile(bad('open.json', readFileSync(path, 'utf8'), 0o644)), {
    code: 'INVALID_ARGUMENT',
    message: /0644|permissions|group|world/,
  });
  t.throws(() => readEnclaveKeyFile(bad('garbage.json', 'not json')), { code: 'KEY_NOT_FOUND', message: /damaged \(not JSON\)/ });
  const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  t.throws(() => readEnclaveKeyFile(bad('point.json', JSON.stringify({ ...doc, publicKey: Buffer.alloc(65, 2).toString('base64url') }))), {
    code: 'KEY_NOT_FOUND',
    message: /not an uncompressed P-256 point/,
  });
  t.throws(() => readEnclaveKeyFile(bad('format.json', JSON.stringify({ ...doc, format: 'other' }))), { code: 'KEY_NOT_FOUND' });
  t.notMatch(readFileSync(path, 'utf8'), /tag/, 'no keychain tag anywhere');
});

t.test('secure enclave: a presence key that cannot prompt backs off instead of queueing prompts', async (t) => {
  let now = 1_000_000;
  const gate = new PromptGate(() => now);
  let asked = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let outcome: () => Promise<string> = async () => 'signed';
  const ask = async () => {
    asked++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    return outcome();
  };
  t.same(await Promise.all([gate.run(ask), gate.run(ask), gate.run(ask)]), ['signed', 'signed', 'signed']);
  t.equal(maxInFlight, 1, 'one prompt at a time');

  outcome = async () => {
    throw new KeyBackendError('INTERACTION_NOT_ALLOWED', 'no prompt can be shown');
  };
  asked = 0;
  const results = await Promise.allSettled([gate.run(ask), gate.run(ask), gate.run(ask)]);
  t.ok(
    results.every((r) => r.status === 'rejected' && (r.reason as KeyBackendError).code === 'INTERACTION_NOT_ALLOWED'),
    'every waiting signature fails with the typed error',
  );
  t.equal(asked, 1, 'only the first asked the Secure Enclave: the others were refused by the closed gate');
  await t.rejects(gate.run(ask), { code: 'INTERACTION_NOT_ALLOWED', message: /not asking again for 30 s/ });
  t.equal(asked, 1, 'still closed');

  now += 30_000;
  await t.rejects(gate.run(ask), { code: 'INTERACTION_NOT_ALLOWED' });
  t.equal(asked, 2, 'asked again once the window passed');
  now += 30_000;
  await t.rejects(gate.run(ask), { message: /not asking again for 30 s/ }, 'the window doubled (60 s, 30 s of it left)');
  t.equal(asked, 2);

  now += 30_000;
  outcome = async () => 'signed';
  t.equal(await gate.run(ask), 'signed', 'a success opens the gate');
  outcome = async () => {
    throw new KeyBackendError('USER_CANCELLED', 'the prompt was cancelled');
  };
  await t.rejects(gate.run(ask), { code: 'USER_CANCELLED' });
  await t.rejects(
    gate.run(ask),
    { code: 'USER_CANCELLED', message: /not asking again for 30 s/ },
    'a cancel closes it too, from 30 s again',
  );
  now += 30_000;
  outcome = async () => {
    throw new KeyBackendError('BACKEND_ERROR', 'something else');
  };
  const before = asked;
  await t.rejects(gate.run(ask), { code: 'BACKEND_ERROR' });
  await t.rejects(gate.run(ask), { code: 'BACKEND_ERROR' });
  t.equal(asked, before + 2, 'other errors do not close the gate');
});

t.test('secure enclave: init refuses the old --tag with the way forward', async (t) => {
  const home = mkdtempSync(join(dir, 'home-'));
  const r = runCli(['init', '--backend', 'secure-enclave', '--tag', 'dev.credport.device'], {
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'cfg'),
    XDG_STATE_HOME: join(home, 'state'),
  });
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /--tag is gone.*key file/);
  t.match(r.stderr, /--key-path/);
  t.notOk(existsSync(join(home, 'cfg', 'credport', 'config.toml')), 'nothing written');
});

if (isMac)
  t.test('secure enclave: create, sign, verify, reopen from the file and remove, on this Mac', async (t) => {
    const a = await secureEnclaveAvailability();
    if (process.env.CREDPORT_NO_SECURE_ENCLAVE === '1') {
      // A Mac said to have none (GitHub's macOS runners are VMs): the probe must say so, and create must refuse.
      t.equal(a.available, false, 'the probe finds no Secure Enclave on this VM');
      if (!a.available) t.match(a.reason, /cannot make Secure Enclave keys/);
      const path = join(dir, 'vm', 'secure-enclave-key.json');
      await t.rejects(SecureEnclaveSigner.create({ path, userPresence: false }), { code: 'BACKEND_ERROR' });
      t.notOk(existsSync(path), 'no key file is left behind');
      return;
    }
    if (!a.available) {
      t.fail(`the Secure Enclave backend is unavailable on this Mac: ${a.reason}`);
      return;
    }
    const path = join(dir, 'mac', 'secure-enclave-key.json');
    const s = await SecureEnclaveSigner.create({ path, userPresence: false });
    t.teardown(() => s.close());
    t.equal(statSync(path).mode & 0o777, 0o600);
    const d = s.describe();
    t.same(d, { backend: 'secure-enclave', location: `Secure Enclave key file ${path}`, userPresence: false });
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

    const again = await SecureEnclaveSigner.open({ path, userPresence: false });
    t.equal(again.thumbprint, s.thumbprint, 'the file opens the same key');
    t.ok(
      verify(
        'sha256',
        data,
        { key: createPublicKey({ key: { ...again.publicJwk() }, format: 'jwk' }), dsaEncoding: 'ieee-p1363' },
        await again.sign(data),
      ),
    );
    await t.rejects(SecureEnclaveSigner.open({ path, userPresence: true }), { code: 'INVALID_ARGUMENT' }, 'user presence cannot change');
    await t.rejects(SecureEnclaveSigner.create({ path, userPresence: false }), { code: 'KEY_EXISTS' }, 'an existing file is kept');

    // Another key's public point with this blob: the open must notice it is not the recorded key.
    const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const other = join(dir, 'mac', 'other.json');
    writeFileSync(other, JSON.stringify({ ...doc, publicKey: POINT.toString('base64url') }), { mode: 0o600 });
    await t.rejects(SecureEnclaveSigner.open({ path: other, userPresence: false }), { code: 'KEY_NOT_FOUND' }, 'a mismatched public key');
    const junk = join(dir, 'mac', 'junk.json');
    writeFileSync(junk, JSON.stringify({ ...doc, tokenObject: randomBytes(200).toString('base64url') }), { mode: 0o600 });
    await t.rejects(SecureEnclaveSigner.open({ path: junk, userPresence: false }), { code: 'KEY_NOT_FOUND' }, 'a blob the enclave refuses');

    await SecureEnclaveSigner.remove({ path });
    t.notOk(existsSync(path), 'the file is gone');
    await t.rejects(SecureEnclaveSigner.open({ path, userPresence: false }), { code: 'KEY_NOT_FOUND' }, 'gone after remove');
  });
