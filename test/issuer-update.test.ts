/** The pure parts of publishing: the conditional-update loop and s3:// locations. */
import t from 'tap';
import { ConflictError, type ConditionalTarget, updateConditionally } from '../daemon/issuer/conditional-update.js';
import { parseS3Location } from '../daemon/issuer/s3-location.js';

/** An object store whose writes lose `losses` times to a rival who adds its own item first. */
function contested(losses: number) {
  let value: string[] | undefined;
  let version = 0;
  let lost = 0;
  const target: ConditionalTarget<string[]> = {
    read: async () => ({ value, etag: value === undefined ? undefined : String(version) }),
    write: async (next, etag) => {
      if (lost < losses) {
        lost++;
        value = [...(value ?? []), `rival${lost}`];
        version++;
        return false;
      }
      if ((value === undefined) !== (etag === undefined) || (etag !== undefined && etag !== String(version))) return false;
      value = next;
      version++;
      return true;
    },
  };
  return { target, value: () => value };
}

const policy = (sleeps: number[]) => ({
  attempts: 5,
  baseMs: 10,
  maxMs: 40,
  sleep: async (ms: number) => void sleeps.push(ms),
  random: () => 1,
});
const add = (item: string) => (cur: string[] | undefined) => (cur?.includes(item) ? cur : [...(cur ?? []), item]);
const same = (a: string[] | undefined, b: string[]) => a === b;

t.test('a lost write is merged again on top of the winner, with growing waits', async (t) => {
  const s = contested(3);
  const sleeps: number[] = [];
  const r = await updateConditionally(s.target, add('me'), same, policy(sleeps));
  t.equal(r.attempts, 4);
  t.ok(r.changed);
  t.same(s.value(), ['rival1', 'rival2', 'rival3', 'me'], "every rival's item kept, ours added");
  t.same(sleeps, [10, 20, 40], 'backoff doubles up to the ceiling');
});

t.test('the loop is bounded: it gives up with nothing written', async (t) => {
  const s = contested(100);
  await t.rejects(updateConditionally(s.target, add('me'), same, policy([])), ConflictError);
  t.notOk(s.value()?.includes('me'));
});

t.test('no change, no write; a refusal from the change stops before writing', async (t) => {
  const s = contested(0);
  await updateConditionally(s.target, add('me'), same, policy([]));
  const again = await updateConditionally(s.target, add('me'), same, policy([]));
  t.equal(again.changed, false);
  await t.rejects(
    updateConditionally(
      s.target,
      () => {
        throw new Error('full');
      },
      same,
      policy([]),
    ),
    /full/,
  );
  t.same(s.value(), ['me']);
});

t.test('s3 locations', async (t) => {
  t.same(parseS3Location('s3://credport-issuer'), { bucket: 'credport-issuer', prefix: '' });
  t.same(parseS3Location('s3://credport-issuer/fleet/shard-1/'), { bucket: 'credport-issuer', prefix: 'fleet/shard-1' });
  for (const bad of ['s3://', 's3://UPPER', 's3://a', 'http://bucket', 's3://bucket/../x', 's3://bucket/a//b', 's3://bucket/a\nb']) {
    t.throws(() => parseS3Location(bad), { name: 'S3LocationError' }, JSON.stringify(bad));
  }
});
