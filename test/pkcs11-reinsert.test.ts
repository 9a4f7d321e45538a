/**
 * A token that goes away while the daemon runs (pulled out, reset, replaced)
 * and comes back: signatures fail with a typed error meanwhile, and once the
 * token is back the same signer object re-opens its session, logs in, finds
 * the key again and signs, with no restart. A different key under the same
 * label is refused, and a PIN the token refused is not offered to it again. Its own file: the re-open needs this process to hold no
 * other session on the module (SoftHSM only rescans its tokens when
 * re-initialised), which a file of its own guarantees.
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { Pkcs11Signer, type Pkcs11KeyOptions } from '../daemon/keys/pkcs11/signer.js';
import type { KeySigner } from '../daemon/keys/signer.js';
import { createSoftHsm, enclaveAddon, pkcs11Tool, softhsm2, type SoftHsm } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const TOOLS = [softhsm2, pkcs11Tool, enclaveAddon];
const hsm: SoftHsm | undefined = TOOLS.every((x) => x.present) ? createSoftHsm() : undefined;
t.teardown(() => hsm?.cleanup());

const opts = (): Pkcs11KeyOptions => ({ module: hsm!.module, tokenLabel: 'credport', keyLabel: 'device', pin: { env: 'PIN' } });
const env = (): Record<string, string> => ({ PIN: hsm!.pin });

function verifies(s: KeySigner, data: Buffer, sig: Uint8Array): boolean {
  return verify('sha256', data, { key: createPublicKey({ key: { ...s.publicJwk() }, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, sig);
}

async function typedFailure(t: Test, p: Promise<unknown>, what: string, codes: string[]): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected a failure`);
  } catch (err) {
    t.type(err, KeyBackendError, `${what}: a KeyBackendError`);
    t.ok(codes.includes((err as KeyBackendError).code), `${what}: ${(err as KeyBackendError).code} is one of ${codes.join(', ')}`);
  }
}

t.test('pkcs11: token removed and re-inserted; the same signer signs again (one shared re-open)', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const s = await Pkcs11Signer.create(opts(), env());
  t.teardown(() => s.close());
  const thumbprint = s.thumbprint;
  const data = Buffer.from('before');
  t.ok(verifies(s, data, await s.sign(data)), 'signs while the token is there');

  const restore = hsm!.removeToken();
  await typedFailure(t, s.sign(Buffer.from('gone')), 'sign with the token gone', ['TOKEN_NOT_PRESENT', 'SESSION_INVALID']);
  await typedFailure(t, s.sign(Buffer.from('still gone')), 'sign again with the token gone', ['TOKEN_NOT_PRESENT']);
  const meanwhile = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => s.sign(Buffer.from(`gone ${i}`))));
  t.ok(
    meanwhile.every((r) => r.status === 'rejected' && r.reason instanceof KeyBackendError && r.reason.code === 'TOKEN_NOT_PRESENT'),
    'concurrent signatures while it is gone all fail with TOKEN_NOT_PRESENT',
  );
  t.equal(s.reopens, 0, 'no successful re-open while the token is away');

  restore();
  const messages = Array.from({ length: 20 }, (_, i) => Buffer.from(`back ${i}`));
  const sigs = await Promise.all(messages.map((m) => s.sign(m)));
  t.ok(
    sigs.every((sig, i) => verifies(s, messages[i]!, sig)),
    'all 20 concurrent signatures after re-insertion verify',
  );
  t.equal(s.reopens, 1, 'the 20 signatures shared one re-open');
  t.equal(s.thumbprint, thumbprint, 'still the same key');
  t.match(s.describe().location, /token "credport"/);
});

t.test('pkcs11: a different key under the same label after re-insertion is refused', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const s = await Pkcs11Signer.open(opts(), env());
  t.teardown(() => s.close());
  const restore = hsm!.removeToken();
  // An impostor: a new token with the same label and a new key with the same label.
  const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'credport', '--pin', hsm!.pin, '--so-pin', hsm!.soPin], {
    env: { ...process.env, SOFTHSM2_CONF: hsm!.conf },
    encoding: 'utf8',
  });
  t.equal(init.status, 0, 'second token initialised');
  hsm!.pkcs11Tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'device', '--id', '01']);
  try {
    await s.sign(Buffer.from('to the impostor'));
    t.fail('signed with a different key');
  } catch (err) {
    t.type(err, KeyBackendError);
    t.equal((err as KeyBackendError).code, 'KEY_NOT_FOUND', 'refused as not our key');
    t.match((err as Error).message, /public key changed/);
  }
  hsm!.removeToken(); // the impostor goes for good
  restore(); // and the real token comes back
  const data = Buffer.from('real one again');
  t.ok(verifies(s, data, await s.sign(data)), 'signs again once the real token is back');
});

t.test('pkcs11: a PIN refused during a re-open is not offered again until it changes', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const pinFile = join(hsm!.dir, 'pin');
  writeFileSync(pinFile, `${hsm!.pin}\n`, { mode: 0o600 });
  const s = await Pkcs11Signer.open({ ...opts(), pin: { file: pinFile }, stateDir: join(hsm!.dir, 'state') }, {});
  t.teardown(() => s.close());
  const restore = hsm!.removeToken();
  await typedFailure(t, s.sign(Buffer.from('gone')), 'token gone', ['TOKEN_NOT_PRESENT', 'SESSION_INVALID']);
  writeFileSync(pinFile, '0000\n', { mode: 0o600 }); // someone edits the PIN file wrongly meanwhile
  restore();
  try {
    await s.sign(Buffer.from('wrong PIN'));
    t.fail('signed with a wrong PIN');
  } catch (err) {
    t.equal((err as KeyBackendError).code, 'PIN_INCORRECT', 'the token refuses the wrong PIN once');
    t.notMatch((err as Error).message, /before/, 'that was a real C_Login');
  }
  for (let i = 0; i < 3; i++) {
    try {
      await s.sign(Buffer.from('wrong PIN again'));
      t.fail('signed with a wrong PIN');
    } catch (err) {
      t.equal((err as KeyBackendError).code, 'PIN_INCORRECT');
      // Held back by the marker that outlives the process (pin-refusal.ts), or by the signer's own memory.
      t.match((err as Error).message, /will not offer that PIN again|refused this PIN before/, `attempt ${i + 2} is not sent to the token`);
    }
  }
  writeFileSync(pinFile, `${hsm!.pin}\n`, { mode: 0o600 });
  const data = Buffer.from('fixed');
  t.ok(verifies(s, data, await s.sign(data)), 'signs again once the PIN file is corrected');
});
