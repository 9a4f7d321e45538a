/**
 * Signing runs off the JavaScript thread: 200 signatures in flight at once on
 * one session all verify, and the event loop keeps turning while the token
 * works through them. Asserted on ordering (loop turns and timer ticks seen
 * before the last signature settled, resolutions spread over many turns),
 * never on absolute time.
 *
 * The token is SoftHSM2 behind a small forwarding module that makes each
 * signature take a few milliseconds longer, as a smart card does
 * (enclave-addon/test/slow_module.cc). SoftHSM alone signs 200 times in about
 * 25 ms of CPU, which a busy machine can hide entirely inside one scheduling
 * gap of the JavaScript thread; a token that sleeps cannot.
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Pkcs11Signer } from '../daemon/keys/pkcs11/signer.js';
import { createSoftHsm, enclaveAddon, softhsm2, type SoftHsm } from './helpers/softhsm.js';
import { assertPresent, needs, tool } from './helpers/tools.js';

const CXX = process.env.CXX ?? 'g++';
const compiler = tool(
  `a C++ compiler (${CXX})`,
  () => spawnSync(CXX, ['--version'], { stdio: 'ignore' }).status === 0,
  'apt-get install g++',
);
const TOOLS = [softhsm2, enclaveAddon, compiler];
const hsm: SoftHsm | undefined = TOOLS.every((x) => x.present) ? createSoftHsm() : undefined;
t.teardown(() => hsm?.cleanup());

const ADDON = fileURLToPath(new URL('../../enclave-addon/', import.meta.url));
const SIGNATURES = 200;
const DELAY_MS = 2;

t.test('pkcs11: 200 concurrent signatures verify and the event loop stays responsive', needs(...TOOLS), async (t) => {
  if (!assertPresent(t, ...TOOLS)) return;
  const slow = join(hsm!.dir, 'slow-pkcs11.so');
  const cc = spawnSync(CXX, ['-std=c++17', '-shared', '-fPIC', `-I${ADDON}src`, '-o', slow, `${ADDON}test/slow_module.cc`, '-ldl'], {
    encoding: 'utf8',
  });
  t.equal(cc.status, 0, `the slow token module builds${cc.status === 0 ? '' : `:\n${cc.stderr}`}`);
  if (cc.status !== 0) return;
  // Read by the slow module when it is loaded.
  process.env.SLOW_PKCS11_TARGET = hsm!.module;
  process.env.SLOW_PKCS11_DELAY_MS = String(DELAY_MS);

  const s = await Pkcs11Signer.create({ module: slow, tokenLabel: 'credport', keyLabel: 'busy', pin: { env: 'PIN' } }, { PIN: hsm!.pin });
  t.teardown(() => s.close());
  const pub = createPublicKey({ key: { ...s.publicJwk() }, format: 'jwk' });

  // Loop turns are counted with setImmediate (one per turn) and a 1 ms
  // interval; a signer that blocked the thread would let neither run until
  // every signature was done.
  let turns = 0;
  let ticks = 0;
  let running = true;
  const spin = (): void => {
    turns++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  const timer = setInterval(() => ticks++, 1);

  const messages = Array.from({ length: SIGNATURES }, (_, i) => Buffer.from(`message ${i}`));
  const resolvedAt = new Set<number>(); // the loop turn in which each signature resolved
  const pending = messages.map((m) =>
    s.sign(m).then((sig) => {
      resolvedAt.add(turns);
      return sig;
    }),
  );
  const turnsWhileIssuing = turns;
  const sigs = await Promise.all(pending);
  const turnsAtLast = turns;
  const ticksAtLast = ticks;
  running = false;
  clearInterval(timer);

  t.equal(sigs.length, SIGNATURES);
  t.ok(
    sigs.every((sig, i) => verify('sha256', messages[i]!, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)),
    `all ${SIGNATURES} signatures verify`,
  );
  t.equal(turnsWhileIssuing, 0, 'issuing the signatures returned at once, before any loop turn');
  t.ok(turnsAtLast >= 20, `the event loop turned ${turnsAtLast} times before the last signature resolved`);
  t.ok(resolvedAt.size >= 10, `the signatures resolved over ${resolvedAt.size} different loop turns, one after another`);
  t.ok(ticksAtLast >= 5, `a 1 ms timer fired ${ticksAtLast} times while the signatures were in flight`);
});
