/** config/validator-runtime.ts: the two helpers the generated validators call, as ajv's own behave. */
import t from 'tap';
import { equal, ucs2length } from '../daemon/config/validator-runtime.js';

t.test('ucs2length counts code points: a surrogate pair is one character, a lone surrogate one too', async (t) => {
  t.equal(ucs2length(''), 0);
  t.equal(ucs2length('abc'), 3);
  t.equal(ucs2length('a\u{1F600}b'), 3);
  t.equal(ucs2length('\uD83D'), 1);
  t.equal(ucs2length('\uD83Dx'), 2);
});

t.test('equal: deep equality of parsed TOML values', async (t) => {
  t.ok(equal(1001, 1001));
  t.notOk(equal(1001, '1001'));
  t.ok(equal(['a', [1, { b: 2 }]], ['a', [1, { b: 2 }]]));
  t.notOk(equal([1, 2], [1, 2, 3]));
  t.notOk(equal({ a: 1 }, { b: 1 }));
  t.notOk(equal({ a: 1 }, [1]));
  t.ok(equal(new Date(5), new Date(5)));
  t.notOk(equal(new Date(5), new Date(6)));
  t.notOk(equal(null, {}));
});
