/**
 * External clients the tests drive. A missing tool skips its test on a
 * developer's machine but fails under CI=true: a green CI must mean the real
 * client ran.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export interface Tool {
  name: string;
  present: boolean;
  why: string;
}

export function tool(name: string, check: () => boolean, installHint: string): Tool {
  let present = false;
  try {
    present = check();
  } catch {
    present = false;
  }
  return { name, present, why: `${name} is not installed (${installHint})` };
}

export const debianAws = tool('Debian awscli (/usr/bin/aws)', () => existsSync('/usr/bin/aws'), 'apt-get install awscli');
export const debianBoto3 = tool(
  'Debian python3-boto3',
  () => existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import boto3'], { stdio: 'ignore' }).status === 0,
  'apt-get install python3-boto3',
);
export const pipBoto3 = tool(
  'boto3 from pip (python3 on PATH)',
  () =>
    spawnSync('python3', ['-c', 'import boto3, sys; sys.exit(0 if sys.executable != "/usr/bin/python3" else 1)'], { stdio: 'ignore' })
      .status === 0,
  'pip install boto3',
);

/** Options for t.test: skip locally when the tool is missing; under CI the test runs and fails. */
export function needs(...tools: Tool[]): { skip?: string } {
  const missing = tools.filter((t) => !t.present);
  if (missing.length === 0) return {};
  if (process.env.CI === 'true') return {};
  return { skip: missing.map((m) => m.why).join('; ') };
}

/** Inside a test that `needs` tools: fail with the reason when one is missing (CI). */
export function assertPresent(t: { fail: (msg: string) => void }, ...tools: Tool[]): boolean {
  const missing = tools.filter((x) => !x.present);
  for (const m of missing) t.fail(`${m.why}; CI=true requires it`);
  return missing.length === 0;
}

export const plistutil = tool('plistutil (libplist-utils)', () => existsSync('/usr/bin/plistutil'), 'apt-get install libplist-utils');
export const systemdAnalyze = tool(
  'systemd-analyze (systemd)',
  () => existsSync('/usr/bin/systemd-analyze') || existsSync('/bin/systemd-analyze'),
  'apt-get install systemd',
);
export const motoServer = tool(
  "moto's server (python3 -m moto.server)",
  () => spawnSync('python3', ['-c', 'import moto.server, flask'], { stdio: 'ignore', timeout: 30_000 }).status === 0,
  "pip install 'moto[server]==5.2.1'",
);
