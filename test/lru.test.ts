/** util/lru.ts: the bounded cache behind the audit log's repeat summaries and the IMDS session tokens. */
import t from 'tap';
import { Lru } from '../daemon/util/lru.js';

t.test('forgets the least recently used first, and says so for evictions only', async (t) => {
  const evicted: string[] = [];
  const lru = new Lru<string, number>(2, (v, k) => evicted.push(`${k}=${v}`));
  lru.set('a', 1).set('b', 2);
  t.equal(lru.get('a'), 1, 'a used: b is now the oldest');
  lru.set('c', 3);
  t.same(evicted, ['b=2']);
  t.equal(lru.get('b'), undefined);
  lru.set('a', 10);
  t.same(evicted, ['b=2'], 'replacing a value is not an eviction');
  t.equal(lru.delete('c'), true);
  t.same(evicted, ['b=2'], 'nor is a delete');
  t.equal(lru.size, 1);
  lru.set('d', 4).set('e', 5);
  t.same(evicted, ['b=2', 'a=10']);
  t.same([...lru.values()], [5, 4], 'most recently used first');
});

t.test('refuses a size that is not a positive integer', async (t) => {
  t.throws(() => new Lru(0), RangeError);
  t.throws(() => new Lru(1.5), RangeError);
});
