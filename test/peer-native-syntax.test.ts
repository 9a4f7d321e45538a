/**
 * The macOS peer lookup (enclave-addon/src/peer_darwin.cc, with the shared
 * peer_address.cc) only builds on a Mac. So that a C++ mistake in it shows on
 * any machine, Debian's clang compiles it here with -fsyntax-only for an
 * Apple target (__APPLE__ defined, Darwin's predefines) against stand-in
 * libproc headers (enclave-addon/test/sdk-stub/libproc.h, sys/proc_info.h)
 * that declare exactly what it uses. The C and C++ library headers are the
 * host's (glibc, libstdc++): only their standard and POSIX parts are used,
 * which macOS has too. It has never been run on a Mac.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { assertPresent, needs, tool } from './helpers/tools.js';

const ADDON = fileURLToPath(new URL('../../enclave-addon/', import.meta.url));
const CLANG = process.env.CLANGXX ?? 'clang++';
const clang = tool(`clang (${CLANG})`, () => spawnSync(CLANG, ['--version'], { stdio: 'ignore' }).status === 0, 'apt-get install clang');

/** The host's multiarch triple (x86_64-linux-gnu), and the Apple target of the same CPU. */
function targets(): { multiarch: string; apple: string } | undefined {
  const r = spawnSync('gcc', ['-dumpmachine'], { encoding: 'utf8' });
  const multiarch = r.status === 0 ? r.stdout.trim() : '';
  const cpu = multiarch.split('-')[0];
  if (cpu === 'x86_64') return { multiarch, apple: 'x86_64-apple-macos11' };
  if (cpu === 'aarch64') return { multiarch, apple: 'arm64-apple-macos11' };
  return undefined;
}

/** Flags that let clang's Apple target read the host's libstdc++ and glibc headers. */
function appleFlags(): string[] | undefined {
  const tg = targets();
  if (!tg) return undefined;
  const versions = existsSync('/usr/include/c++') ? readdirSync('/usr/include/c++').filter((v) => /^\d+$/.test(v)) : [];
  const v = versions.filter((x) => existsSync(`/usr/include/${tg.multiarch}/c++/${x}`)).sort((a, b) => Number(b) - Number(a))[0];
  if (!v) return undefined;
  return [
    `--target=${tg.apple}`,
    // Darwin predefines __nonnull as a nullability keyword; glibc defines it as a macro.
    '-U__nonnull',
    // g++ and clang's Linux target define it for C++; libstdc++ needs glibc's GNU declarations.
    '-D_GNU_SOURCE',
    '-nostdinc++',
    '-isystem',
    `/usr/include/c++/${v}`,
    '-isystem',
    `/usr/include/${tg.multiarch}/c++/${v}`,
    '-isystem',
    `/usr/include/${tg.multiarch}`,
    '-std=c++17',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-fsyntax-only',
    `-I${ADDON}test/sdk-stub`,
    `-I${ADDON}src`,
  ];
}
const hostHeaders = tool('libstdc++ headers for the host (g++)', () => appleFlags() !== undefined, 'apt-get install g++');

function compile(flags: string[], file: string): { status: number | null; stderr: string } {
  const r = spawnSync(CLANG, [...flags, file], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

t.test(
  'peer lookup: the macOS file compiles (syntax) for an Apple target against the declared libproc calls',
  needs(clang, hostHeaders),
  async (t) => {
    if (!assertPresent(t, clang, hostHeaders)) return;
    const flags = appleFlags()!;
    for (const file of ['peer_darwin.cc', 'peer_address.cc']) {
      const r = compile(flags, `${ADDON}src/${file}`);
      t.equal(r.status, 0, `${file} compiles without warnings${r.status === 0 ? '' : `:\n${r.stderr}`}`);
    }
  },
);

t.test('peer lookup: the check is real (an Apple target, and a broken copy fails)', needs(clang, hostHeaders), async (t) => {
  if (!assertPresent(t, clang, hostHeaders)) return;
  const flags = appleFlags()!;
  const dir = mkdtempSync(join(tmpdir(), 'credport-peer-syntax-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const probe = join(dir, 'apple.cc');
  writeFileSync(probe, '#if !defined(__APPLE__) || !defined(__MACH__) || defined(__linux__)\n#error not an Apple target\n#endif\n');
  t.equal(compile(flags, probe).status, 0, '__APPLE__ and __MACH__ defined, __linux__ not');

  // A field libproc does not have: the stub must not accept anything.
  const broken = join(dir, 'peer_darwin_broken.cc');
  const source = readFileSync(`${ADDON}src/peer_darwin.cc`, 'utf8');
  t.match(source, /insi_lport/, 'the source reads insi_lport');
  writeFileSync(broken, source.replaceAll('insi_lport', 'insi_local_port'));
  const r = compile(flags, broken);
  t.not(r.status, 0, 'a misspelt libproc field fails to compile');
  t.match(r.stderr, /insi_local_port/, 'and the error names it');
});

t.test('peer lookup: the ENOTSUP stub (Windows, the BSDs) compiles', needs(clang), async (t) => {
  if (!assertPresent(t, clang)) return;
  const r = spawnSync(
    CLANG,
    ['-std=c++17', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', `-I${ADDON}src`, `${ADDON}src/peer_unsupported.cc`],
    {
      encoding: 'utf8',
    },
  );
  t.equal(r.status, 0, `peer_unsupported.cc compiles without warnings${r.status === 0 ? '' : `:\n${r.stderr}`}`);
});
