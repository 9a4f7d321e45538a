/**
 * The fault-injecting PKCS#11 module (enclave-addon/test/fault_module.cc), compiled per test file
 * into its temporary directory and pointed at a SoftHSM2 token. Faults are switched by rewriting
 * its control file, which the module reads on every call.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tool } from './tools.js';

const CXX = process.env.CXX ?? 'g++';
export const compiler = tool(
  `a C++ compiler (${CXX})`,
  () => spawnSync(CXX, ['--version'], { stdio: 'ignore' }).status === 0,
  'apt-get install g++',
);

const ADDON = fileURLToPath(new URL('../../../enclave-addon/', import.meta.url));

export interface FaultControl {
  epoch?: number;
  finalize?: number;
  attrError?: number;
  slotOffset?: bigint;
}

export interface FaultModule {
  /** Path of the compiled module, to use as a PKCS#11 module path. */
  path: string;
  /** Replaces the whole control state (faults not named are off). */
  set(control: FaultControl): void;
  /** The C_CloseSession lines logged so far ("close main" / "close worker"). */
  closes(): string[];
}

/** Compiles the module into `dir` and sets the environment it reads when first loaded; throws with the compiler's output. */
export function buildFaultModule(dir: string, target: string): FaultModule {
  const path = join(dir, 'fault-pkcs11.so');
  const cc = spawnSync(CXX, ['-std=c++17', '-shared', '-fPIC', `-I${ADDON}src`, '-o', path, `${ADDON}test/fault_module.cc`, '-ldl'], {
    encoding: 'utf8',
  });
  if (cc.status !== 0) throw new Error(`the fault module does not build:\n${cc.stderr}`);
  const control = join(dir, 'fault-control');
  const log = join(dir, 'fault-log');
  writeFileSync(control, '');
  process.env.FAULT_PKCS11_TARGET = target;
  process.env.FAULT_PKCS11_CONTROL = control;
  process.env.FAULT_PKCS11_LOG = log;
  return {
    path,
    set(c) {
      const lines = [
        c.epoch !== undefined ? `epoch=${c.epoch}` : '',
        c.finalize !== undefined ? `finalize=${c.finalize}` : '',
        c.attrError !== undefined ? `attr_error=${c.attrError}` : '',
        c.slotOffset !== undefined ? `slot_offset=${c.slotOffset}` : '',
      ];
      writeFileSync(control, `${lines.filter(Boolean).join('\n')}\n`);
    },
    closes() {
      return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    },
  };
}
