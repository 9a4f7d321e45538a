/** The Azure SDK clients the tests drive: @azure/identity in a child process, and Debian's Python azure-identity. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { runChild } from './clients.js';
import { tool } from './tools.js';

export const debianAzureIdentity = tool(
  'Debian python3-azure (azure-identity)',
  () => existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import azure.identity'], { stdio: 'ignore' }).status === 0,
  'apt-get install python3-azure',
);

export const ROOT = process.cwd();

/** Shell exports from `credport env` as a map. */
export function exportsOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^export ([A-Z_]+)='([^']*)'$/gm)) out[m[1] ?? ''] = m[2] ?? '';
  for (const m of text.matchAll(/^export ([A-Z_]+)=([^'\s]+)$/gm)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

/** A Node client in its own process (the CA is trusted only through NODE_EXTRA_CA_CERTS at start). */
export async function nodeClient(code: string, env: NodeJS.ProcessEnv): Promise<{ token?: string; expiresOn?: number; error?: string }> {
  const r = await runChild(process.execPath, ['--input-type=module', '-e', code], { PATH: process.env.PATH, ...env }, ROOT, 60_000);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as { token?: string; expiresOn?: number };
  } catch {
    return { error: `exit ${r.code}: ${r.stderr.slice(-2000)}` };
  }
}

export const printToken = (credential: string, scope: string) => `
import * as identity from '@azure/identity';
try {
  const cred = ${credential};
  const t = await cred.getToken(${JSON.stringify(scope)});
  console.log(JSON.stringify({ token: t.token, expiresOn: t.expiresOnTimestamp }));
} catch (e) { console.log(JSON.stringify({ error: String(e && e.message || e).slice(0, 1500) })); }`;

/** Debian's Python ManagedIdentityCredential against IDENTITY_ENDPOINT in `vars`. */
export async function pythonManagedIdentityToken(
  vars: Record<string, string>,
  home: string,
  scope: string,
): Promise<{ code: number | null; stderr: string; token?: string; expiresOn?: number }> {
  const py = `
import json
from azure.identity import ManagedIdentityCredential
t = ManagedIdentityCredential().get_token(${JSON.stringify(scope)})
print(json.dumps({"token": t.token, "expiresOn": t.expires_on}))`;
  const r = await runChild('/usr/bin/python3', ['-c', py], { PATH: process.env.PATH, HOME: home, ...vars }, ROOT, 60_000);
  try {
    return {
      code: r.code,
      stderr: r.stderr,
      ...(JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { token?: string; expiresOn?: number }),
    };
  } catch {
    return { code: r.code, stderr: r.stderr };
  }
}
