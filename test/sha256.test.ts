/** The slim path's SHA-256 (util/sha256.ts) gives node:crypto's answer for every length around the padding's edges. */
import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import { sha256Hex } from '../daemon/util/sha256.js';

const node = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

t.test('known answers', async (t) => {
  // FIPS 180-4's own example, written out here, so a mistake shared with node:crypto's use cannot hide.
  t.equal(sha256Hex(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.equal(sha256Hex(new Uint8Array(0)), node(new Uint8Array(0)), 'empty input');
});

t.test('every length from 0 to 300 bytes (one to six blocks, each padding case)', async (t) => {
  const bytes = randomBytes(300);
  const wrong: number[] = [];
  for (let n = 0; n <= 300; n++) if (sha256Hex(bytes.subarray(0, n)) !== node(bytes.subarray(0, n))) wrong.push(n);
  t.same(wrong, [], 'no length differs');
});

t.test('a config-sized file and a large one, and a view into a larger buffer', async (t) => {
  for (const n of [4096, 65_537, 1_000_003]) {
    const b = randomBytes(n);
    t.equal(sha256Hex(b), node(b), `${n} bytes`);
  }
  const outer = randomBytes(200);
  const inner = outer.subarray(17, 150);
  t.equal(sha256Hex(inner), node(inner), 'only the view is hashed, not the buffer under it');
});
