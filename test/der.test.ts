/**
 * DER <-> raw r||s ECDSA signature conversion: the TypeScript one
 * (daemon/keys/der.ts) and the addon's C++ one (enclave-addon/src/der.cc),
 * on edge cases (high-bit values, leading zeros, short values, P-521's long
 * form), on real signatures from node:crypto, and on malformed input, which
 * both must refuse alike. Also the CKA_EC_POINT unwrapping the addon does.
 */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import t from 'tap';
import { derToRaw, rawToDer } from '../daemon/keys/der.js';
import { KeyBackendError } from '../daemon/keys/errors.js';
import { loadAddon, type NativeAddon } from '../daemon/keys/native/addon.js';
import { enclaveAddon } from './helpers/softhsm.js';
import { assertPresent, needs } from './helpers/tools.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const load = loadAddon();
const nativeAddon: NativeAddon | undefined = load.available ? load.addon : undefined;

const r32 = (first: string, fill: string): string => first + fill.repeat(32 - first.length / 2);

interface Vector {
  name: string;
  raw: string;
  der: string;
}

const VECTORS: Vector[] = [
  {
    name: 'high bit set in r and s: each gets a 00 prefix',
    raw: r32('80', 'aa') + r32('ff', 'bb'),
    der: `3046 0221 00${r32('80', 'aa')} 0221 00${r32('ff', 'bb')}`,
  },
  {
    name: 'leading zero bytes are dropped (r starts 00 00 01)',
    raw: `0000${'01'.repeat(30)}` + r32('7f', '11'),
    der: `3042 021e ${'01'.repeat(30)} 0220 ${r32('7f', '11')}`,
  },
  {
    name: 'short values (r = 1, s = 0x80 needs its 00)',
    raw: `${'00'.repeat(31)}01${'00'.repeat(31)}80`,
    der: '3007 020101 02020080',
  },
  {
    name: 'zero halves stay one byte',
    raw: '00'.repeat(64),
    der: '3006 020100 020100',
  },
];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? 'THREW';
  }
}

t.test('der: fixed vectors, both ways, TypeScript and native', async (t) => {
  for (const v of VECTORS) {
    const raw = hex(v.raw);
    const der = hex(v.der);
    t.same(Buffer.from(rawToDer(raw)), der, `rawToDer: ${v.name}`);
    t.same(Buffer.from(derToRaw(der, 32)), raw, `derToRaw: ${v.name}`);
    if (nativeAddon) {
      t.same(nativeAddon.der.fromRaw(raw), der, `native fromRaw: ${v.name}`);
      t.same(nativeAddon.der.toRaw(der, 32), raw, `native toRaw: ${v.name}`);
    }
  }
});

t.test('der: P-521 signatures use the long length form', async (t) => {
  const raw = Buffer.concat([hex(`01${'ff'.repeat(65)}`), hex(`01${'ee'.repeat(65)}`)]);
  const der = Buffer.from(rawToDer(raw));
  t.equal(der[0], 0x30);
  t.equal(der[1], 0x81, 'SEQUENCE length in the 0x81 form');
  t.equal(der[2], der.length - 3);
  t.same(Buffer.from(derToRaw(der, 66)), raw, 'round trip');
  if (nativeAddon) t.same(nativeAddon.der.fromRaw(raw), der, 'native agrees');
});

t.test('der: real signatures from node:crypto convert and still verify (P-256, P-384, P-521)', async (t) => {
  for (const [curve, size] of [
    ['P-256', 32],
    ['P-384', 48],
    ['P-521', 66],
  ] as const) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    for (let i = 0; i < 40; i++) {
      const data = randomBytes(20);
      const der = sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
      const raw = derToRaw(der, size);
      t.equal(raw.length, 2 * size);
      if (!verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)) t.fail(`${curve}: DER -> raw verifies`);
      const p1363 = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const back = rawToDer(p1363);
      if (!verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, back)) t.fail(`${curve}: raw -> DER verifies`);
      if (nativeAddon) {
        if (!nativeAddon.der.toRaw(der, size).equals(raw)) t.fail(`${curve}: native toRaw differs`);
        if (!nativeAddon.der.fromRaw(p1363).equals(back)) t.fail(`${curve}: native fromRaw differs`);
      }
    }
    t.pass(`${curve}: 40 signatures each way verify${nativeAddon ? ', native output identical' : ''}`);
  }
});

t.test('der: random r||s round-trips identically in both implementations', async (t) => {
  for (let i = 0; i < 500; i++) {
    const raw = randomBytes(64);
    // Force the interesting shapes often: zero bytes and set high bits up front.
    if (i % 4 === 0) raw.fill(0, 0, 1 + (i % 7));
    if (i % 5 === 0) raw[32] = 0x80 | raw[32]!;
    const der = rawToDer(raw);
    if (!Buffer.from(derToRaw(der, 32)).equals(raw)) t.fail(`round trip ${raw.toString('hex')}`);
    if (nativeAddon && !nativeAddon.der.fromRaw(raw).equals(Buffer.from(der))) t.fail(`native differs ${raw.toString('hex')}`);
  }
  t.pass('500 random signatures');
});

t.test('der: malformed input is refused by both', async (t) => {
  const good = `3006 020101 020102`;
  const bad: [string, string][] = [
    ['not a SEQUENCE', '3106 020101 020102'],
    ['SEQUENCE length too long', '3007 020101 020102'],
    ['SEQUENCE length too short', '3005 020101 020102'],
    ['trailing bytes inside', '3009 020101 020102 020100'],
    ['negative r', '3006 020181 020102'],
    ['superfluous leading zero', '3007 02020001 020102'],
    ['empty INTEGER', '3005 0200 020102'],
    ['r wider than the field', `3027 0222 01${'00'.repeat(33)} 020101`],
    ['length in a non-minimal long form', '308106 020101 020102'],
    ['missing s', '3003 020101'],
    ['not an INTEGER', '3006 030101 020102'],
    ['empty input', ''],
  ];
  t.equal(
    codeOf(() => derToRaw(hex(good), 32)),
    undefined,
    'the well-formed one parses',
  );
  for (const [name, input] of bad) {
    const bytes = hex(input);
    t.equal(
      codeOf(() => derToRaw(bytes, 32)),
      'INVALID_ARGUMENT',
      `TS refuses: ${name}`,
    );
    if (nativeAddon && bytes.length > 0)
      t.equal(
        codeOf(() => nativeAddon.der.toRaw(bytes, 32)),
        'INVALID_ARGUMENT',
        `native refuses: ${name}`,
      );
  }
  t.throws(() => rawToDer(randomBytes(63)), KeyBackendError, 'odd raw length');
  t.throws(() => rawToDer(new Uint8Array(0)), KeyBackendError, 'empty raw');
  t.throws(() => derToRaw(hex(good), 0), KeyBackendError, 'field size 0');
});

t.test('der: CKA_EC_POINT as a DER OCTET STRING or bare (native)', needs(enclaveAddon), async (t) => {
  if (!assertPresent(t, enclaveAddon) || !nativeAddon) return;
  const point = Buffer.concat([Buffer.from([0x04]), randomBytes(64)]);
  const unwrap = nativeAddon.der.unwrapEcPoint;
  t.same(unwrap(Buffer.concat([hex('0441'), point])), point, 'DER OCTET STRING (what the specification says)');
  t.same(unwrap(point), point, 'the bare point (what some tokens return)');
  t.same(unwrap(Buffer.concat([hex('048141'), point])), point, 'the BER long form some tokens use');
  t.match(
    codeOf(() => unwrap(Buffer.concat([hex('0421'), Buffer.from([0x02]), randomBytes(32)]))),
    'INVALID_ARGUMENT',
    'compressed point refused',
  );
  t.throws(() => unwrap(Buffer.concat([hex('0421'), Buffer.from([0x03]), randomBytes(32)])), /compressed/, 'and says why');
  t.equal(
    codeOf(() => unwrap(Buffer.concat([hex('0442'), point]))),
    'INVALID_ARGUMENT',
    'wrong OCTET STRING length',
  );
  t.equal(
    codeOf(() => unwrap(Buffer.concat([hex('0461'), Buffer.from([0x04]), randomBytes(96)]))),
    'INVALID_ARGUMENT',
    'a P-384 point',
  );
  t.equal(
    codeOf(() => unwrap(hex('0500'))),
    'INVALID_ARGUMENT',
    'not an OCTET STRING',
  );
});
