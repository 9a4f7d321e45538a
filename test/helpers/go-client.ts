/**
 * The AWS SDKs for Go, as Debian ships them (source under /usr/share/gocode), built into a tiny client
 * (test/fixtures/go-sdk-v1, go-sdk-v2) in GOPATH mode with the module proxy off: no network is used, and a
 * build that would need one fails instead.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChild } from './clients.js';
import { tool } from './tools.js';

const GOPATH = '/usr/share/gocode';
const GO = '/usr/bin/go';

export const goSdkV1 = tool(
  'AWS SDK for Go v1 (Debian golang-github-aws-aws-sdk-go-dev)',
  () => existsSync(GO) && existsSync(join(GOPATH, 'src/github.com/aws/aws-sdk-go/aws/session')),
  'apt-get install golang-go golang-github-aws-aws-sdk-go-dev',
);
export const goSdkV2 = tool(
  'AWS SDK for Go v2 (Debian golang-github-aws-aws-sdk-go-v2-dev)',
  () => existsSync(GO) && existsSync(join(GOPATH, 'src/github.com/aws/aws-sdk-go-v2/config')),
  'apt-get install golang-go golang-github-aws-aws-sdk-go-v2-dev',
);

/**
 * Builds test/fixtures/<fixture>/main.go into `outDir`; the path of the binary, or why not. The build
 * cache is kept between runs (a cold build of the SDK takes tens of seconds, a warm one about a second).
 */
export async function buildGoClient(fixture: 'go-sdk-v1' | 'go-sdk-v2', outDir: string): Promise<string | Error> {
  const src = fileURLToPath(new URL(`../../../test/fixtures/${fixture}/main.go`, import.meta.url));
  const out = join(outDir, fixture);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: homedir(),
    GOCACHE: process.env.GOCACHE ?? join(homedir(), '.cache', 'go-build'),
    GOPATH,
    GO111MODULE: 'off',
    GOPROXY: 'off',
    GOFLAGS: '',
    GOTOOLCHAIN: 'local',
  };
  const r = await runChild(GO, ['build', '-o', out, src], env, outDir, 150_000);
  return r.code === 0 ? out : new Error(`go build of ${fixture} failed (${String(r.code)}): ${r.stderr.slice(-2000)}`);
}

/** What the Go SDK calls the provider that answered, per endpoint (the same names in v1 and v2). */
export const GO_SOURCE = { ecs: 'CredentialsEndpointProvider', imds: 'EC2RoleProvider' } as const;
