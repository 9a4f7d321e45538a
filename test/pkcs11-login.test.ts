/**
 * What the signer proves before it trusts a token: that the PIN is right even when the token is
 * logged in already (CKR_USER_ALREADY_LOGGED_IN checks nothing), that the public key it found
 * under the private key's CKA_ID belongs to that private key, and that a PIN the token refused is
 * not offered again by the next process (credential_process starts one per AWS CLI call) until
 * the PIN file changes.
 */
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { loadAddon } from '../daemon/keys/native/addon.js';
import { Pkcs11Signer, type Pkcs11KeyOptions } from '../daemon/keys/pkcs11/signer.js';
import { createSoftHsm, enclaveAddon, pkcs11Tool, softhsm2, type SoftHsm } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const TOOLS = [softhsm2, pkcs11Tool, enclaveAddon];
const hsm: SoftHsm | undefined = TOOLS.every((x) => x.present) ? createSoftHsm() : undefined;
t.teardown(() => hsm?.cleanup());
if (hsm) hsm.pkcs11Tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'device', '--id', '01']);

const opts = (over: Partial<Pkcs11KeyOptions> = {}): Pkcs11KeyOptions => ({
  module: hsm!.module,
  tokenLabel: 'credport',
  keyLabel: 'device',
  pin: { env: 'PIN' },
  stateDir: join(hsm!.dir, 'state'),
  ...over,
});

async function refused(t: Test, p: Promise<unknown>, code: string, what: string): Promise<KeyBackendError | undefined> {
  try {
    const s = (await p) as Pkcs11Signer;
    await s.close();
    t.fail(`${what}: accepted`);
    return undefined;
  } catch (err) {
    t.type(err, KeyBackendError, what);
    t.equal((err as KeyBackendError).code, code, `${what}: ${code}`);
    return err as KeyBackendError;
  }
}

t.test('a wrong PIN is refused although the token is logged in already', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const load = loadAddon();
  if (!load.available) throw new Error(load.reason);
  // Logged in by something else in this process that credport knows nothing of.
  const other = await load.addon.pkcs11.openSession(hsm!.module, { label: 'credport' });
  t.teardown(() => other.close());
  await other.login(Buffer.from(hsm!.pin));
  await refused(t, Pkcs11Signer.open(opts(), { PIN: '99999' }), 'PIN_INCORRECT', 'wrong PIN, token logged in by another user');

  const good = await Pkcs11Signer.open(opts(), { PIN: hsm!.pin });
  t.teardown(() => good.close());
  t.pass('the right PIN is accepted');
  const again = await refused(t, Pkcs11Signer.open(opts(), { PIN: '99999' }), 'PIN_INCORRECT', 'wrong PIN, token logged in by a signer');
  t.match(again?.message ?? '', /no try was spent/, 'refused without asking the token');
  const second = await Pkcs11Signer.open(opts(), { PIN: hsm!.pin });
  t.equal(second.thumbprint, good.thumbprint, 'a second signer with the right PIN opens the same key');
  await second.close();
});

t.test("a public key object that is not the private key's is refused at open", needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  hsm!.pkcs11Tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'pair-a', '--id', 'a1']);
  hsm!.pkcs11Tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'pair-b', '--id', 'b1']);
  // pair-a's public object goes; pair-b's takes its CKA_ID, so the lookup by id finds the wrong one.
  hsm!.pkcs11Tool(['--delete-object', '--type', 'pubkey', '--id', 'a1']);
  hsm!.pkcs11Tool(['--type', 'pubkey', '--id', 'b1', '--set-id', 'a1']);
  const err = await refused(t, Pkcs11Signer.open(opts({ keyLabel: 'pair-a' }), { PIN: hsm!.pin }), 'KEY_NOT_FOUND', 'mismatched pair');
  t.match(err?.message ?? '', /does not belong to its private key/, 'the message says what is wrong');
});

t.test('a refused PIN file is not offered again, by any process, until it changes', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const pinFile = join(hsm!.dir, 'pin');
  const stateDir = join(hsm!.dir, 'state');
  writeFileSync(pinFile, '99999\n', { mode: 0o600 });
  const withFile = opts({ pin: { file: pinFile } });
  const first = await refused(t, Pkcs11Signer.open(withFile, {}), 'PIN_INCORRECT', 'first try');
  t.match(first?.message ?? '', /CKR_PIN_INCORRECT/, 'the token itself refused it');
  const markers = existsSync(stateDir) ? readdirSync(stateDir).filter((n) => n.startsWith('pkcs11-pin-refused-')) : [];
  t.equal(markers.length, 1, 'a marker is left in the state directory');
  if (markers[0] !== undefined) t.equal(statSync(join(stateDir, markers[0])).mode & 0o777, 0o600, 'readable by the user only');

  // A new signer stands for the next credential_process: it shares nothing with the first but the state directory.
  for (let i = 0; i < 3; i++) {
    const next = await refused(t, Pkcs11Signer.open(withFile, {}), 'PIN_INCORRECT', `try ${i + 2}`);
    t.match(next?.message ?? '', /will not offer that PIN again until the file changes/, `try ${i + 2} is not sent to the token`);
    t.match(next?.message ?? '', new RegExp(pinFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the message names the PIN file');
  }

  // And a real second process, as credential_process starts one per AWS CLI call.
  const signerModule = new URL('../daemon/keys/pkcs11/signer.js', import.meta.url).href;
  const child = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { Pkcs11Signer } = await import(${JSON.stringify(signerModule)});
       try { await Pkcs11Signer.open(JSON.parse(process.argv[1]), {}); console.log('opened'); }
       catch (err) { console.log(err.code + ': ' + err.message); }`,
      JSON.stringify(withFile),
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  t.match(child.stdout, /^PIN_INCORRECT: .*will not offer that PIN again/, 'another process refuses too, without asking the token');

  writeFileSync(pinFile, `${hsm!.pin}\n`, { mode: 0o600 });
  const fixed = await Pkcs11Signer.open(withFile, {});
  t.pass('once the file changes, its PIN is tried and accepted');
  await fixed.close();
  t.same(
    readdirSync(stateDir).filter((n) => n.startsWith('pkcs11-pin-refused-')),
    [],
    'and the marker is gone',
  );
});
