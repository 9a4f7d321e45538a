/**
 * Signatures queued on one PKCS#11 session do not take libuv's thread pool from the rest of the
 * process: a session runs one native call at a time, so fs and dns work issued after 200 queued
 * signatures finishes long before the queue does. Asserted by counting the signatures that had
 * completed when the fs and dns callbacks ran, never by time. (Before, each signature held a pool
 * thread while it waited for the session's lock, and the fs call waited behind nearly all 200.)
 */
import { lookup } from 'node:dns';
import { stat } from 'node:fs';
import t from 'tap';
import { Pkcs11Signer } from '../daemon/keys/pkcs11/signer.js';
import { createSoftHsm, enclaveAddon, softhsm2, type SoftHsm } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const TOOLS = [softhsm2, enclaveAddon];
const hsm: SoftHsm | undefined = TOOLS.every((x) => x.present) ? createSoftHsm() : undefined;
t.teardown(() => hsm?.cleanup());

const SIGNATURES = 200;

t.test('fs and dns are served while 200 signatures are queued on one session', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const s = await Pkcs11Signer.create(
    { module: hsm!.module, tokenLabel: 'credport', keyLabel: 'busy', pin: { env: 'PIN' } },
    { PIN: hsm!.pin },
  );
  t.teardown(() => s.close());

  let done = 0;
  const signatures = Array.from({ length: SIGNATURES }, (_, i) => s.sign(Buffer.from(`message ${i}`)).then(() => done++));
  const atFs = new Promise<number>((resolve, reject) => stat(hsm!.dir, (err) => (err ? reject(err) : resolve(done))));
  const atDns = new Promise<number>((resolve, reject) => lookup('localhost', (err) => (err ? reject(err) : resolve(done))));
  const [fsSeen, dnsSeen] = await Promise.all([atFs, atDns]);
  await Promise.all(signatures);

  t.equal(done, SIGNATURES, 'every signature completed');
  // The pool has 4 threads; a session holding at most one of them leaves the others free at once.
  t.ok(fsSeen < SIGNATURES / 4, `fs.stat completed after ${fsSeen} of ${SIGNATURES} signatures`);
  t.ok(dnsSeen < SIGNATURES / 4, `dns.lookup completed after ${dnsSeen} of ${SIGNATURES} signatures`);
});
