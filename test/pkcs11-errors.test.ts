/**
 * The mapping from PKCS#11 return values to typed errors (in the addon, one
 * table for every platform), its TypeScript side (KeyBackendError), and how
 * a missing or broken addon is reported.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { KEY_BACKEND_ERROR_CODES, KeyBackendError, isKeyBackendError } from '../daemon/keys/errors.js';
import { loadAddon, loadAddonAt } from '../daemon/keys/native/addon.js';
import { enclaveAddon } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

t.test('errors: the addon and TypeScript know the same codes, in the same order', needs(enclaveAddon), async (t) => {
  if (!assertPresent(t, enclaveAddon)) return;
  const load = loadAddon();
  if (!load.available) return;
  t.same([...load.addon.errors.codes], [...KEY_BACKEND_ERROR_CODES]);
});

t.test('errors: CK_RV values map to typed codes', needs(enclaveAddon), async (t) => {
  if (!assertPresent(t, enclaveAddon)) return;
  const load = loadAddon();
  if (!load.available) return;
  const { fromCkr } = load.addon.errors;
  const table: [number, 'module' | 'session', string][] = [
    [0xa0, 'session', 'PIN_INCORRECT'], // CKR_PIN_INCORRECT
    [0xa1, 'session', 'PIN_INCORRECT'], // CKR_PIN_INVALID
    [0xa2, 'session', 'PIN_INCORRECT'], // CKR_PIN_LEN_RANGE
    [0xa4, 'session', 'PIN_LOCKED'], // CKR_PIN_LOCKED
    [0xa3, 'session', 'PIN_LOCKED'], // CKR_PIN_EXPIRED
    [0xb3, 'session', 'SESSION_INVALID'], // CKR_SESSION_HANDLE_INVALID
    [0xb0, 'session', 'SESSION_INVALID'], // CKR_SESSION_CLOSED
    [0x101, 'session', 'SESSION_INVALID'], // CKR_USER_NOT_LOGGED_IN
    [0x32, 'session', 'SESSION_INVALID'], // CKR_DEVICE_REMOVED
    [0xe0, 'session', 'SESSION_INVALID'], // CKR_TOKEN_NOT_PRESENT after open
    [0xe0, 'module', 'TOKEN_NOT_PRESENT'], // CKR_TOKEN_NOT_PRESENT before
    [0xe1, 'module', 'TOKEN_NOT_PRESENT'], // CKR_TOKEN_NOT_RECOGNIZED
    [0x50, 'session', 'USER_CANCELLED'], // CKR_FUNCTION_CANCELED
    [0x140, 'session', 'UNSUPPORTED_CURVE'], // CKR_CURVE_NOT_SUPPORTED
    [0x130, 'session', 'UNSUPPORTED_CURVE'], // CKR_DOMAIN_PARAMS_INVALID
    [0x05, 'session', 'BACKEND_ERROR'], // CKR_GENERAL_ERROR
    [0x30, 'session', 'BACKEND_ERROR'], // CKR_DEVICE_ERROR
    [0x80000001, 'session', 'BACKEND_ERROR'], // vendor defined
  ];
  for (const [rv, stage, code] of table) {
    const m = fromCkr(rv, stage);
    t.equal(m.code, code, `0x${rv.toString(16)} (${stage}) -> ${code}: ${m.message}`);
  }
  t.match(fromCkr(0xa0, 'session').message, /CKR_PIN_INCORRECT/, 'the message names the CKR');
  t.match(fromCkr(0x80000001, 'session').message, /CKR 0x80000001/, 'unknown values in hex');
});

t.test('errors: KeyBackendError.from keeps native codes and numbers', async (t) => {
  const native = Object.assign(new Error('C_Login failed: CKR_PIN_LOCKED'), { code: 'PIN_LOCKED', ckr: 0xa4 });
  const e = KeyBackendError.from(native, 'opening the key');
  t.equal(e.code, 'PIN_LOCKED');
  t.equal(e.ckr, 0xa4);
  t.equal(e.message, 'opening the key: C_Login failed: CKR_PIN_LOCKED');
  t.equal(e.cause, native);
  t.ok(isKeyBackendError(e, 'PIN_LOCKED', 'PIN_INCORRECT'));
  t.notOk(isKeyBackendError(e, 'KEY_NOT_FOUND'));
  t.equal(KeyBackendError.from(Object.assign(new Error('x'), { code: 'ENOENT' })).code, 'BACKEND_ERROR', 'foreign codes are not trusted');
  t.equal(KeyBackendError.from('a string').code, 'BACKEND_ERROR');
  t.equal(KeyBackendError.from(e), e, 'already typed: unchanged');
  t.equal(KeyBackendError.from(Object.assign(new Error('y'), { code: 'USER_CANCELLED', osStatus: -128 })).osStatus, -128);
});

t.test('errors: an addon that is missing or broken is reported with the reason, never thrown', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'credport-addon-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'enclave-addon', 'build', 'Release'), { recursive: true });

  const notBuilt = loadAddonAt(root);
  t.equal(notBuilt.available, false);
  if (!notBuilt.available) t.match(notBuilt.reason, /not built .*build it with: node scripts\/build-addon\.mjs/s);

  writeFileSync(join(root, 'enclave-addon', 'build', 'BUILD_ERROR.txt'), 'build failed: g++: not found\n\n--- node-gyp output ---\n...');
  const failed = loadAddonAt(root);
  if (!failed.available) t.match(failed.reason, /the last build failed: build failed: g\+\+: not found/, 'quotes the build error');
  else t.fail('reported available');

  writeFileSync(join(root, 'enclave-addon', 'build', 'Release', 'credport_enclave.node'), 'not a shared object');
  const broken = loadAddonAt(root);
  if (!broken.available) t.match(broken.reason, /failed to load: .*rebuild it/s, 'a broken binary');
  else t.fail('reported available');

  t.equal(loadAddonAt(undefined).available, false, 'no package root');
});
