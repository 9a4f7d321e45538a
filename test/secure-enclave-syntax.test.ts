/**
 * The Secure Enclave store (enclave-addon/src/secure_enclave_darwin.cc) only builds on macOS. So that a
 * C++ mistake in it shows on any machine, Debian's clang compiles it here with -fsyntax-only for Apple
 * targets (`clang++ -target arm64-apple-macos12`, and x86_64 for Intel Macs with a T2), against the
 * documented stand-in SDK headers in enclave-addon/test/sdk-stub/ (Security, CoreFoundation, the
 * Objective-C runtime), each declaration written to the SDK's signature. The C and C++ library headers
 * are glibc's and libstdc++'s for the same CPU (Debian's arm64 cross headers for arm64): only their
 * standard parts are used, which macOS has too. This is not a Mac build: the macOS workflow
 * (.github/workflows/macos.yml) builds against the real SDK, and nothing here has run on a Secure Enclave.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { assertPresent, needs, tool } from './helpers/tools.js';

const ADDON = fileURLToPath(new URL('../../enclave-addon/', import.meta.url));
const SOURCE = `${ADDON}src/secure_enclave_darwin.cc`;
const CLANG = process.env.CLANGXX ?? 'clang++';
const clang = tool(`clang (${CLANG})`, () => spawnSync(CLANG, ['--version'], { stdio: 'ignore' }).status === 0, 'apt-get install clang');

const newest = (dir: string): string | undefined =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))[0]
    : undefined;

/** The libc and libstdc++ include directories for a CPU, or undefined when they are not installed. */
function libraryIncludes(cpu: 'arm64' | 'x86_64'): string[] | undefined {
  const host = spawnSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const triple = cpu === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  if (host === triple) {
    const v = newest('/usr/include/c++');
    if (!v || !existsSync(`/usr/include/${triple}/c++/${v}`)) return undefined;
    return [`/usr/include/c++/${v}`, `/usr/include/${triple}/c++/${v}`, `/usr/include/${triple}`, '/usr/include'];
  }
  // Debian's cross headers (libc6-dev-arm64-cross, libstdc++-12-dev-arm64-cross) live under /usr/<triple>.
  const root = `/usr/${triple}/include`;
  const v = newest(`${root}/c++`);
  if (!v || !existsSync(`${root}/c++/${v}/${triple}`)) return undefined;
  return [`${root}/c++/${v}`, `${root}/c++/${v}/${triple}`, root];
}

function appleFlags(cpu: 'arm64' | 'x86_64'): string[] | undefined {
  const includes = libraryIncludes(cpu);
  if (!includes) return undefined;
  return [
    '-target',
    `${cpu}-apple-macos12`,
    // Darwin predefines __nonnull as a nullability keyword; glibc defines it as a macro.
    '-U__nonnull',
    // g++ and clang's Linux target define it for C++; libstdc++ needs glibc's GNU declarations.
    '-D_GNU_SOURCE',
    '-nostdinc++',
    '-nostdlibinc',
    ...includes.flatMap((d) => ['-isystem', d]),
    '-std=c++17',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-fsyntax-only',
    `-I${ADDON}test/sdk-stub`,
    `-I${ADDON}src`,
  ];
}

const arm64Headers = tool(
  'glibc and libstdc++ headers for arm64',
  () => appleFlags('arm64') !== undefined,
  'apt-get install libc6-dev-arm64-cross libstdc++-12-dev-arm64-cross',
);
const x86Headers = tool('glibc and libstdc++ headers for x86_64', () => appleFlags('x86_64') !== undefined, 'apt-get install g++');

function compile(flags: string[], file: string): { status: number | null; stderr: string } {
  const r = spawnSync(CLANG, [...flags, file], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

t.test(
  'secure enclave: compiles (syntax) for arm64-apple-macos12 against the documented SDK stubs',
  needs(clang, arm64Headers),
  async (t) => {
    if (!assertPresent(t, clang, arm64Headers)) return;
    const r = compile(appleFlags('arm64')!, SOURCE);
    t.equal(r.status, 0, `compiles without warnings${r.status === 0 ? '' : `:\n${r.stderr}`}`);
  },
);

t.test('secure enclave: compiles (syntax) for x86_64-apple-macos12 (Intel Macs with a T2)', needs(clang, x86Headers), async (t) => {
  if (!assertPresent(t, clang, x86Headers)) return;
  const r = compile(appleFlags('x86_64')!, SOURCE);
  t.equal(r.status, 0, `compiles without warnings${r.status === 0 ? '' : `:\n${r.stderr}`}`);
});

t.test('secure enclave: the check is real (an Apple target; wrong calls and the keychain fail)', needs(clang, arm64Headers), async (t) => {
  if (!assertPresent(t, clang, arm64Headers)) return;
  const flags = appleFlags('arm64')!;
  const dir = mkdtempSync(join(tmpdir(), 'credport-se-syntax-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const probe = join(dir, 'apple.cc');
  writeFileSync(
    probe,
    '#if !defined(__APPLE__) || !defined(__MACH__) || !defined(__arm64__) || defined(__linux__)\n#error not arm64 Apple\n#endif\n',
  );
  t.equal(compile(flags, probe).status, 0, '__APPLE__, __MACH__ and __arm64__ defined, __linux__ not');

  const source = readFileSync(SOURCE, 'utf8');
  const broken = (name: string, from: string, to: string): { status: number | null; stderr: string } => {
    t.ok(source.includes(from), `the source has ${from}`);
    const file = join(dir, `${name}.cc`);
    writeFileSync(file, source.replace(from, to));
    return compile(flags, file);
  };
  // SecKeyCreateWithData takes (data, attributes, error): swapped arguments must not pass.
  const swapped = broken(
    'swapped',
    'SecKeyCreateWithData(blob.get(), attrs.get(), error.out())',
    'SecKeyCreateWithData(attrs.get(), blob.get(), error.out())',
  );
  t.not(swapped.status, 0, 'swapped SecKeyCreateWithData arguments fail to compile');
  t.match(swapped.stderr, /SecKeyCreateWithData/);
  // objc_msgSend must be cast to the method's type, as with the SDK's strict prototype.
  const uncast = broken('uncast', 'Msg<id (*)(Class, SEL)>()(cls, sel_registerName("new"))', 'objc_msgSend(cls, sel_registerName("new"))');
  t.not(uncast.status, 0, 'an uncast objc_msgSend fails to compile');
  // The keychain calls are not declared: a return to a permanent keychain key would not compile.
  const keychain = broken(
    'keychain',
    'CfPtr<CFErrorRef> error;\n  SecKeyRef key = SecKeyCreateRandomKey',
    'SecItemDelete(nullptr);\n  CfPtr<CFErrorRef> error;\n  SecKeyRef key = SecKeyCreateRandomKey',
  );
  t.not(keychain.status, 0, 'a keychain call (SecItemDelete) fails to compile');
  t.match(keychain.stderr, /SecItemDelete/);
  t.notMatch(
    source,
    /SecItem(CopyMatching|Add|Delete|Update)|kSecUseDataProtectionKeychain|kSecAccessControlBiometryCurrentSet/,
    'no keychain call, no BiometryCurrentSet',
  );
  t.match(source, /kSecAttrIsPermanent, kCFBooleanFalse/, 'the key is not permanent');
});
