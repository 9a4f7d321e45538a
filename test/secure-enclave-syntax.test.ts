/**
 * The Secure Enclave store (enclave-addon/src/secure_enclave_darwin.cc) only
 * builds on macOS. So that a C++ mistake in it shows up on any machine, it is
 * compiled here with -fsyntax-only against stand-in Apple headers
 * (enclave-addon/test/sdk-stub/) that declare exactly the calls it makes. The
 * real check stays a Mac build and `npm test -- --grep enclave`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { assertPresent, needs, tool } from './helpers/tools.js';

const ADDON = fileURLToPath(new URL('../../enclave-addon/', import.meta.url));
const CXX = process.env.CXX ?? 'g++';
const compiler = tool(
  `a C++ compiler (${CXX})`,
  () => spawnSync(CXX, ['--version'], { stdio: 'ignore' }).status === 0,
  'apt-get install g++',
);

t.test('secure enclave: the macOS store compiles (syntax) against the declared Security.framework calls', needs(compiler), async (t) => {
  if (!assertPresent(t, compiler)) return;
  const r = spawnSync(
    CXX,
    [
      '-std=c++17',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-fsyntax-only',
      `-I${ADDON}test/sdk-stub`,
      `-I${ADDON}src`,
      `${ADDON}src/secure_enclave_darwin.cc`,
    ],
    { encoding: 'utf8' },
  );
  t.equal(r.status, 0, `compiles without warnings${r.status === 0 ? '' : `:\n${r.stderr}`}`);
});
