/**
 * cli/compile-cache.ts: node's compile cache is kept in this user's own directory, never in the shared
 * temporary directory node picks by default, and not where another user could have written. The bin
 * turns it on only where the running node has it.
 */
import { chmodSync, existsSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { compileCacheDir } from '../daemon/cli/compile-cache.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp-dir.js';

const uid = process.getuid?.() ?? 0;

const home = (t: Test) => tempDir(t, 'credport-cc-');

t.test('under XDG_CACHE_HOME, else ~/.cache; created for this user alone', async (t) => {
  const h = home(t);
  const xdg = join(h, 'xdg');
  const dir = compileCacheDir({ HOME: h, XDG_CACHE_HOME: xdg }, uid);
  t.equal(dir, join(xdg, 'credport', 'node-compile-cache'));
  t.equal(statSync(dir!).mode & 0o777, 0o700, 'no one else may read or write it');
  t.equal(statSync(join(xdg, 'credport')).mode & 0o777, 0o700);
  t.equal(compileCacheDir({ HOME: h }, uid), join(h, '.cache', 'credport', 'node-compile-cache'));
  t.equal(
    compileCacheDir({ HOME: h, XDG_CACHE_HOME: 'relative/cache' }, uid),
    join(h, '.cache', 'credport', 'node-compile-cache'),
    'a relative XDG_CACHE_HOME is ignored, as the XDG spec says',
  );
});

t.test('nowhere safe: no cache, and never the shared temporary directory', async (t) => {
  t.equal(compileCacheDir({}, uid), undefined, 'no HOME, no XDG_CACHE_HOME');
  t.equal(compileCacheDir({ HOME: 'relative' }, uid), undefined);
  const h = home(t);
  t.equal(compileCacheDir({ HOME: h }, uid + 1), undefined, "a home that is not the user's own (HOME kept by sudo)");
  t.notOk(existsSync(join(h, '.cache')), 'and nothing made in it');
  const theirs = home(t);
  t.equal(compileCacheDir({ XDG_CACHE_HOME: theirs }, uid + 1), undefined, "an XDG_CACHE_HOME that is not the user's own");
  const open = home(t);
  mkdirSync(join(open, '.cache', 'credport', 'node-compile-cache'), { recursive: true });
  chmodSync(join(open, '.cache', 'credport'), 0o777);
  t.equal(compileCacheDir({ HOME: open }, uid), undefined, 'a credport directory others may write to');
  const open2 = home(t);
  mkdirSync(join(open2, '.cache', 'credport', 'node-compile-cache'), { recursive: true, mode: 0o700 });
  chmodSync(join(open2, '.cache', 'credport', 'node-compile-cache'), 0o775);
  t.equal(compileCacheDir({ HOME: open2 }, uid), undefined, 'a cache directory its group may write to');
  const linked = home(t);
  mkdirSync(join(linked, 'elsewhere'), { mode: 0o700 });
  mkdirSync(join(linked, '.cache', 'credport'), { recursive: true, mode: 0o700 });
  symlinkSync(join(linked, 'elsewhere'), join(linked, '.cache', 'credport', 'node-compile-cache'));
  t.equal(compileCacheDir({ HOME: linked }, uid), undefined, 'a symlink in its place');
  const blocked = home(t);
  mkdirSync(join(blocked, '.cache'), { mode: 0o500 });
  if (uid !== 0) t.equal(compileCacheDir({ HOME: blocked }, uid), undefined, 'a cache home it cannot write');
});

t.test('the bin keeps the cache in the user directory where node has one, and makes none where not', async (t) => {
  const h = home(t);
  const r = runCli(['--version'], { HOME: h });
  t.equal(r.status, 0, r.stderr);
  const dir = join(h, '.cache', 'credport', 'node-compile-cache');
  if (Number(process.versions.node.split('.')[0]) >= 22) t.ok(existsSync(dir), `node ${process.versions.node}: ${dir}`);
  else t.notOk(existsSync(dir), `node ${process.versions.node} has no compile cache: nothing made`);
});
