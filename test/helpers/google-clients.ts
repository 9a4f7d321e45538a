/**
 * Google's real clients, each run as a child process in an environment that
 * holds nothing but what the test sets: npm's google-auth-library (the
 * worktree's devDependency) and Debian's python3-google-auth 1.5.1. Each
 * prints one JSON line with what it ended up with (token, project, email) or
 * its error; a run is bounded in time by runChild's kill.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv, runChild, type ChildResult, type EmptyHome } from './clients.js';
import { tool } from './tools.js';

/** The worktree root (dist/test/helpers → ../../..), where node_modules resolves google-auth-library. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const googleAuthLibrary = tool(
  'google-auth-library (npm devDependency)',
  () => existsSync(join(REPO_ROOT, 'node_modules', 'google-auth-library', 'package.json')),
  'npm install',
);
/** Google's own CLI: not a Debian package, so its test skips where it is absent, CI included. */
export const GCLOUD = '/usr/bin/gcloud';
export const gcloudPresent = existsSync(GCLOUD);
export const debianGoogleAuth = tool(
  'Debian python3-google-auth',
  () =>
    existsSync('/usr/bin/python3') &&
    spawnSync('/usr/bin/python3', ['-c', 'import google.auth.compute_engine'], { stdio: 'ignore' }).status === 0,
  'apt-get install python3-google-auth',
);

export interface GoogleClientResult {
  accessToken?: string;
  projectId?: string | null;
  /** The service account email the client settled on (metadata clients only). */
  email?: string;
  /** The client's own error message, when it failed. */
  error?: string;
  /** The raw run, for failure messages. */
  run: ChildResult;
}

/**
 * ADC the way applications use it: GoogleAuth finds the credential (the file in
 * GOOGLE_APPLICATION_CREDENTIALS, else the metadata server), gets a token and
 * the project id. `email` comes from getCredentials() on the metadata path.
 */
const NODE_SCRIPT = `
const { GoogleAuth } = require('google-auth-library');
const out = (o, code) => { process.stdout.write(JSON.stringify(o) + '\\n'); process.exitCode = code; };
(async () => {
  const scopes = process.env.CREDPORT_TEST_SCOPES ? JSON.parse(process.env.CREDPORT_TEST_SCOPES) : undefined;
  const auth = new GoogleAuth(scopes ? { scopes } : {});
  const client = await auth.getClient();
  const t = await client.getAccessToken();
  const projectId = await auth.getProjectId();
  let email;
  if (process.env.CREDPORT_TEST_EMAIL === '1') email = (await auth.getCredentials()).client_email;
  out({ accessToken: t.token, projectId, email }, 0);
})().catch((e) => out({ error: String((e && e.message) || e) }, 1));
`;

/** google.auth.default() as 1.5.1 runs it (ping, project-id), then a refresh (service account info, token). */
const PYTHON_SCRIPT = `
import json, sys
try:
    import google.auth
    from google.auth import compute_engine
    from google.auth.transport import _http_client
    request = _http_client.Request()
    if sys.argv[1] == 'default':
        creds, project = google.auth.default(request=request)
    else:
        creds, project = compute_engine.Credentials(), None
    creds.refresh(request)
    print(json.dumps({'accessToken': creds.token, 'projectId': project, 'email': creds.service_account_email, 'kind': type(creds).__name__}))
except Exception as e:
    print(json.dumps({'error': '%s: %s' % (type(e).__name__, e)}))
    sys.exit(1)
`;

function parse(run: ChildResult): GoogleClientResult {
  const line = run.stdout.trim().split('\n').pop() ?? '';
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    const s = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
    return {
      run,
      ...(s('accessToken') !== undefined ? { accessToken: s('accessToken') } : {}),
      ...(s('projectId') !== undefined || o.projectId === null ? { projectId: s('projectId') ?? null } : {}),
      ...(s('email') !== undefined ? { email: s('email') } : {}),
      ...(s('error') !== undefined ? { error: s('error') } : {}),
    };
  } catch {
    return {
      run,
      error: `client printed no JSON (exit ${String(run.code)}): stdout ${run.stdout.slice(0, 500)} stderr ${run.stderr.slice(-1500)}`,
    };
  }
}

/**
 * The environment of a Google client: an empty HOME and gcloud config dir (so no
 * application_default_credentials.json of the developer's answers), plus `vars`.
 * PATH finds nothing: without GOOGLE_CLOUD_PROJECT, google-auth-library runs
 * `gcloud config config-helper` for the project before it asks the metadata
 * server, and a gcloud on the machine would answer in its place. The clients are
 * started by absolute path.
 */
export function googleEnv(home: EmptyHome, vars: Record<string, string>): NodeJS.ProcessEnv {
  return cleanEnv(home, { PATH: join(home.dir, 'no-bin'), CLOUDSDK_CONFIG: join(home.dir, 'gcloud'), ...vars });
}

/**
 * The variables that point both clients at a metadata server at `hostPort`
 * (127.0.0.1:PORT): Node reads GCE_METADATA_HOST (GCE_METADATA_IP wins when
 * set), and with either set it pings only that host, not 169.254.169.254 and
 * metadata.google.internal; Python 1.5.1 pings GCE_METADATA_IP and reads from
 * GCE_METADATA_ROOT.
 */
export function metadataEnv(hostPort: string): Record<string, string> {
  return { GCE_METADATA_HOST: hostPort, GCE_METADATA_IP: hostPort, GCE_METADATA_ROOT: hostPort };
}

export async function runNodeGoogleAuth(
  env: NodeJS.ProcessEnv,
  o: { scopes?: string[]; email?: boolean; timeoutMs?: number } = {},
): Promise<GoogleClientResult> {
  const vars = {
    ...env,
    ...(o.scopes ? { CREDPORT_TEST_SCOPES: JSON.stringify(o.scopes) } : {}),
    ...(o.email ? { CREDPORT_TEST_EMAIL: '1' } : {}),
  };
  return parse(await runChild(process.execPath, ['-e', NODE_SCRIPT], vars, REPO_ROOT, o.timeoutMs ?? 30_000));
}

export async function runPythonGoogleAuth(
  env: NodeJS.ProcessEnv,
  mode: 'default' | 'compute',
  timeoutMs = 30_000,
): Promise<GoogleClientResult> {
  return parse(await runChild('/usr/bin/python3', ['-c', PYTHON_SCRIPT, mode], env, REPO_ROOT, timeoutMs));
}

/**
 * gcloud as a metadata-server client: `config config-helper` prints the account,
 * project and access token it settled on. gcloud is a Python program that needs
 * PATH; its config dir is the empty one in googleEnv.
 */
export async function runGcloud(env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<GoogleClientResult> {
  const run = await runChild(
    GCLOUD,
    ['config', 'config-helper', '--format', 'json'],
    { ...env, PATH: '/usr/bin:/bin' },
    REPO_ROOT,
    timeoutMs,
  );
  try {
    const o = JSON.parse(run.stdout) as {
      configuration?: { properties?: { core?: { account?: string; project?: string } } };
      credential?: { access_token?: string };
    };
    const core = o.configuration?.properties?.core;
    return {
      run,
      ...(o.credential?.access_token !== undefined ? { accessToken: o.credential.access_token } : {}),
      projectId: core?.project ?? null,
      ...(core?.account !== undefined ? { email: core.account } : {}),
    };
  } catch {
    return { run, error: `gcloud printed no JSON (exit ${String(run.code)}): ${run.stderr.slice(-1500)}` };
  }
}
