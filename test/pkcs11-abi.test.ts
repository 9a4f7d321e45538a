/**
 * The addon's own PKCS#11 header (enclave-addon/src/pkcs11_abi.h) against an
 * independent one (p11-kit's pkcs11.h): every CK_FUNCTION_LIST offset, the
 * size and field offsets of every structure we pass to a module, and every
 * constant we use must agree, or a call would land in the wrong function.
 * The check is a generated C++ file of static_asserts compiled with g++; it is
 * compiled for 32-bit too when the machine can.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { tool, assertPresent, needs } from './helpers/tools.js';

const HEADER = fileURLToPath(new URL('../../enclave-addon/src/pkcs11_abi.h', import.meta.url));
const P11KIT_DIR = '/usr/include/p11-kit-1';
const CXX = process.env.CXX ?? 'g++';

const compiler = tool(
  `a C++ compiler (${CXX})`,
  () => spawnSync(CXX, ['--version'], { stdio: 'ignore' }).status === 0,
  'apt-get install g++',
);
const p11kit = tool('p11-kit pkcs11.h', () => existsSync(join(P11KIT_DIR, 'p11-kit', 'pkcs11.h')), 'apt-get install libp11-kit-dev');

interface Parsed {
  functions: string[];
  structs: Map<string, string[]>;
  constants: string[];
}

/** Reads the declarations the check needs straight from our header. */
function parseHeader(text: string): Parsed {
  const structs = new Map<string, string[]>();
  for (const m of text.matchAll(/struct (CK_\w+) \{([^}]*)\};/g)) {
    const fields = [...m[2]!.matchAll(/(\w+)(?:\[\d+\])?;/g)].map((f) => f[1]!);
    structs.set(m[1]!, fields);
  }
  const functions = structs.get('CK_FUNCTION_LIST')?.filter((f) => f.startsWith('C_')) ?? [];
  const constants = [...text.matchAll(/constexpr \w+ (CK\w+) =/g)].map((m) => m[1]!);
  return { functions, structs, constants };
}

function checkSource(p: Parsed): string {
  const ours: string[] = [];
  const asserts: string[] = [];
  for (const [name, fields] of p.structs) {
    ours.push(`constexpr std::size_t size_${name} = sizeof(credport::p11::${name});`);
    asserts.push(`static_assert(ours::size_${name} == sizeof(${name}), "sizeof(${name})");`);
    for (const f of fields) {
      ours.push(`constexpr std::size_t off_${name}_${f} = offsetof(credport::p11::${name}, ${f});`);
      asserts.push(`static_assert(ours::off_${name}_${f} == offsetof(${name}, ${f}), "offsetof(${name}, ${f})");`);
    }
  }
  for (const c of p.constants) {
    ours.push(`constexpr unsigned long long value_${c} = credport::p11::${c};`);
    asserts.push(`static_assert(ours::value_${c} == (unsigned long long)(${c}), "${c}");`);
  }
  // Ours first, in a namespace: p11-kit's macros (CKR_OK, value, count, ...)
  // would otherwise rewrite the names in our declarations.
  return [
    '#include <cstddef>',
    `#include "${HEADER}"`,
    'namespace ours {',
    ...ours,
    '}',
    '#include <p11-kit/pkcs11.h>',
    ...asserts,
    'int main() { return 0; }',
    '',
  ].join('\n');
}

function compile(file: string, extra: string[]): { ok: boolean; output: string } {
  const r = spawnSync(CXX, ['-std=c++17', '-fsyntax-only', `-I${P11KIT_DIR}`, ...extra, file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

t.test('our header lists the whole v2.40 function table', async (t) => {
  const p = parseHeader(readFileSync(HEADER, 'utf8'));
  t.equal(p.functions.length, 68, '68 function pointers');
  t.equal(p.functions[0], 'C_Initialize');
  t.equal(p.functions[67], 'C_WaitForSlotEvent');
  t.equal(new Set(p.functions).size, 68, 'no duplicates');
  t.ok(p.constants.length > 50, 'constants found for the check');
  // Reading the certificate next to the key (CKO_CERTIFICATE objects, CKA_VALUE): these must be among
  // the constants compared with p11-kit below, not silently missed by the parser.
  for (const c of ['CKO_CERTIFICATE', 'CKC_X_509', 'CKA_CERTIFICATE_TYPE', 'CKA_VALUE']) t.ok(p.constants.includes(c), `${c} is checked`);
});

t.test('pkcs11_abi.h matches p11-kit pkcs11.h (offsets, sizes, constants)', needs(compiler, p11kit), async (t) => {
  if (!assertPresent(t, compiler, p11kit)) return;
  const p = parseHeader(readFileSync(HEADER, 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'credport-abi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'abi_check.cc');
  writeFileSync(file, checkSource(p));
  const native = compile(file, []);
  t.ok(native.ok, `every static_assert holds for the native ABI${native.ok ? '' : `:\n${native.output}`}`);

  // 32-bit (where CK_ULONG and pointers are 4 bytes) only if the toolchain has it.
  const probe = join(dir, 'probe.cc');
  writeFileSync(probe, '#include <cstddef>\nint main() { return 0; }\n');
  if (compile(probe, ['-m32']).ok) {
    const m32 = compile(file, ['-m32']);
    t.ok(m32.ok, `every static_assert holds for 32-bit${m32.ok ? '' : `:\n${m32.output}`}`);
  } else {
    t.comment('no 32-bit toolchain here; checked the native ABI only');
  }

  // The check must be able to fail: a deliberately wrong constant is caught.
  const broken = join(dir, 'broken.cc');
  writeFileSync(
    broken,
    checkSource(p).replace(
      '#include <p11-kit/pkcs11.h>',
      '#include <p11-kit/pkcs11.h>\n#undef CKR_PIN_INCORRECT\n#define CKR_PIN_INCORRECT 0xA1UL',
    ),
  );
  t.notOk(compile(broken, []).ok, 'a mismatch fails the compile');
  const brokenCert = join(dir, 'broken-cert.cc');
  writeFileSync(
    brokenCert,
    checkSource(p).replace(
      '#include <p11-kit/pkcs11.h>',
      '#include <p11-kit/pkcs11.h>\n#undef CKA_CERTIFICATE_TYPE\n#define CKA_CERTIFICATE_TYPE 0x81UL',
    ),
  );
  t.notOk(compile(brokenCert, []).ok, 'a wrong certificate constant fails the compile too');
});
