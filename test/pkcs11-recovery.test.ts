/**
 * PKCS#11 recovers from everything that is not the user's fault. A fault-injecting module in
 * front of SoftHSM2 (enclave-addon/test/fault_module.cc) stands in for the real events:
 *
 * - another entry for the same library in the process (p11-kit-proxy next to the direct path)
 *   letting go must not finalise the library under the other entry;
 * - a library finalised by someone else (CKR_CRYPTOKI_NOT_INITIALIZED) is initialised again;
 * - CKR_GENERAL_ERROR on every call of an old session (tpm2-abrmd restarted) leads to a re-open;
 * - a failing C_GetAttributeValue is an error, not "the object lacks the attribute";
 * - a session the garbage collector finds is closed off the JavaScript thread;
 * - slot ids beyond 2^53 come out as exact BigInts and are accepted back.
 *
 * The order matters for the first test: it needs the module initialised first through the
 * fault module, so it runs before anything else in this file touches SoftHSM.
 */
import { createPublicKey, verify } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { loadAddon, type NativeAddon } from '../daemon/keys/native/addon.js';
import { Pkcs11Signer, type Pkcs11KeyOptions } from '../daemon/keys/pkcs11/signer.js';
import type { KeySigner } from '../daemon/keys/signer.js';
import { buildFaultModule, compiler, type FaultModule } from './helpers/fault-module.js';
import { createSoftHsm, enclaveAddon, softhsm2, type SoftHsm } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const TOOLS = [softhsm2, enclaveAddon, compiler];
const hsm: SoftHsm | undefined = TOOLS.every((x) => x.present) ? createSoftHsm() : undefined;
t.teardown(() => hsm?.cleanup());
const faults: FaultModule | undefined = hsm && buildFaultModule(hsm.dir, hsm.module);

const via = (module: string, keyLabel = 'device'): Pkcs11KeyOptions => ({ module, tokenLabel: 'credport', keyLabel, pin: { env: 'PIN' } });
const env = (): Record<string, string> => ({ PIN: hsm!.pin });
const addon = (): NativeAddon => {
  const load = loadAddon();
  if (!load.available) throw new Error(load.reason);
  return load.addon;
};

async function signsAndVerifies(s: KeySigner, what: string): Promise<boolean> {
  const data = Buffer.from(what);
  const sig = await s.sign(data);
  return verify('sha256', data, { key: createPublicKey({ key: { ...s.publicJwk() }, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, sig);
}

t.test('closing one entry of a library does not finalise it under another entry', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  // The fault module's entry initialises SoftHSM; the direct entry then finds it initialised.
  const proxied = await Pkcs11Signer.create(via(faults!.path), env());
  const direct = await Pkcs11Signer.open(via(hsm!.module), env());
  t.teardown(() => direct.close());
  t.ok(await signsAndVerifies(direct, 'before'), 'the direct entry signs');
  await proxied.close();
  t.ok(await signsAndVerifies(direct, 'after'), 'the direct entry still signs after the other entry closed its last session');
  t.equal(direct.reopens, 0, 'without needing a re-open');
});

t.test('a library finalised by another user is initialised again and both entries recover', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  faults!.set({});
  const proxied = await Pkcs11Signer.open(via(faults!.path), env());
  const direct = await Pkcs11Signer.open(via(hsm!.module), env());
  t.teardown(() => Promise.all([proxied.close(), direct.close()]));
  faults!.set({ finalize: 1 }); // the next call through the fault module finalises SoftHSM first
  t.ok(await signsAndVerifies(proxied, 'finalised under the fault module'), 'the entry that met CKR_CRYPTOKI_NOT_INITIALIZED signs');
  t.equal(proxied.reopens, 1, 'after one re-open');
  t.ok(await signsAndVerifies(direct, 'finalised under the direct entry'), 'the other entry, whose session died too, signs');
  t.equal(direct.reopens, 1, 'after one re-open');
});

t.test('CKR_GENERAL_ERROR from a session (tpm2-abrmd restarted) leads to a re-open', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  faults!.set({ epoch: 0 });
  const s = await Pkcs11Signer.open(via(faults!.path), env());
  t.teardown(() => s.close());
  t.ok(await signsAndVerifies(s, 'before the restart'));
  faults!.set({ epoch: 1 }); // every session opened before now answers CKR_GENERAL_ERROR
  t.ok(await signsAndVerifies(s, 'after the restart'), 'the same signer signs again');
  t.equal(s.reopens, 1, 'after one re-open');
  t.ok(await signsAndVerifies(s, 'and after that'), 'and keeps signing');
  t.equal(s.reopens, 1, 'on the new session');
});

t.test('a failing C_GetAttributeValue is an error, not a missing attribute', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  faults!.set({});
  const session = await addon().pkcs11.openSession(faults!.path, { label: 'credport' });
  t.teardown(() => session.close());
  await session.login(Buffer.from(hsm!.pin));
  t.teardown(() => faults!.set({}));
  for (const [attr, name] of [
    [0x181, 'CKA_EC_POINT'],
    [0x202, 'CKA_ALWAYS_AUTHENTICATE'],
  ] as const) {
    faults!.set({ attrError: attr });
    try {
      await session.findKey({ label: 'device' });
      t.fail(`findKey succeeded although reading ${name} failed`);
    } catch (err) {
      t.match((err as Error).message, /CKR_DEVICE_ERROR/, `${name}: the token's error is reported`);
      t.equal((err as { ckr?: number }).ckr, 0x30, `${name}: with its CK_RV`);
    }
  }
});

t.test('a session left to the garbage collector is closed off the JavaScript thread', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  faults!.set({});
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const before = faults!.closes().length;
  await (async () => {
    const session = await addon().pkcs11.openSession(faults!.path, { label: 'credport' });
    await session.token();
  })();
  for (let i = 0; i < 100 && faults!.closes().length === before; i++) {
    gc();
    await sleep(20);
  }
  const closes = faults!.closes().slice(before);
  t.same(closes, ['close worker'], 'C_CloseSession ran once, not on the main (JavaScript) thread');
});

t.test('slot ids beyond 2^53 are exact BigInts, accepted back', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const offset = 2n ** 60n;
  faults!.set({ slotOffset: offset });
  t.teardown(() => faults!.set({}));
  const direct = (await addon().pkcs11.listSlots(hsm!.module)).find((s) => s.token?.label === 'credport');
  const shifted = (await addon().pkcs11.listSlots(faults!.path)).find((s) => s.token?.label === 'credport');
  t.ok(direct && shifted, 'the token is listed through both entries');
  const expected = BigInt(direct!.slotId) + offset;
  t.equal(typeof shifted!.slotId, 'bigint', 'a slot id beyond 2^53 is a BigInt');
  t.equal(shifted!.slotId, expected, 'and exact');
  const session = await addon().pkcs11.openSession(faults!.path, { slotId: expected });
  t.teardown(() => session.close());
  t.equal((await session.token()).slotId, expected, 'selecting the slot by that BigInt opens that token');
  await t.rejects(
    addon().pkcs11.openSession(faults!.path, { slotId: expected + 1n }),
    { code: 'TOKEN_NOT_PRESENT' },
    'a neighbour id is another slot',
  );
});
