/**
 * The AWS SDK clients only the admin commands use are optional peer dependencies: a production install
 * has no @aws-sdk package at all, the daemon and the everyday CLI import none (only the admin modules
 * do), and an admin command run without its package says in one line what to install, before changing
 * anything. The last part runs the real CLI from a copy of dist/ whose node_modules lacks @aws-sdk, so
 * Node's own ERR_MODULE_NOT_FOUND is what the command meets.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { CliError } from '../daemon/cli/cli-error.js';
import { installCommand, isMissingPackage, loadOptional, OPTIONAL_PACKAGES } from '../daemon/cli/optional-package.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST_DAEMON = join(ROOT, 'dist', 'daemon');
const DIST_BUNDLE = join(ROOT, 'dist', 'bundle');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};
/** The only compiled modules that may import an AWS SDK package: the admin commands' own. */
const ADMIN_MODULES = new Set([
  'issuer/s3-issuer.js',
  'issuer/cloudfront-invalidate.js',
  'clouds/aws/setup/deploy.js',
  'clouds/aws/setup/run.js',
]);

t.test('package.json: no AWS SDK in the production dependencies; the admin clients optional peers', async (t) => {
  t.same(
    Object.keys(PKG.dependencies).filter((n) => n.startsWith('@aws-sdk/') || n.startsWith('@smithy/') || n === 'aws-sdk'),
    [],
    'dependencies hold no AWS SDK package',
  );
  t.same(PKG.peerDependencies, OPTIONAL_PACKAGES, 'the peers are exactly the packages the CLI knows how to explain');
  for (const name of Object.keys(OPTIONAL_PACKAGES)) {
    t.equal(PKG.peerDependenciesMeta?.[name]?.optional, true, `${name} is an optional peer`);
    t.equal(PKG.devDependencies[name], PKG.peerDependencies?.[name], `${name} is a devDependency too, for the tests`);
  }
});

function compiled(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? compiled(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : [],
  );
}

t.test('dist/daemon: only the admin modules import an AWS SDK package', async (t) => {
  const importers = compiled(DIST_DAEMON)
    .filter((f) => /(?:from\s*|import\s*\(\s*|import\s+)['"](?:@aws-sdk\/|@smithy\/)/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(DIST_DAEMON, f));
  t.ok(importers.length > 0, 'the check sees the admin modules');
  t.same(
    importers.filter((f) => !ADMIN_MODULES.has(f)),
    [],
    'no other module (type-only imports compile to nothing)',
  );
});

t.test('loadOptional: a missing package becomes one line naming the install command', async (t) => {
  const absent = '@credport-test/never-installed';
  const err = await loadOptional(absent, 'credport frobnicate', () => import(absent), '^9.1.0').catch((e: unknown) => e);
  t.ok(err instanceof CliError, 'a CliError');
  t.match(
    (err as CliError).message,
    /^credport frobnicate needs the npm package @credport-test\/never-installed, which a plain credport install leaves out; install it with: npm install (-g )?@credport-test\/never-installed@\^9\.1\.0$/,
  );
  t.notMatch((err as CliError).message, /\n/, 'one line');
  t.equal((err as CliError).exitCode, 1);

  // Missing inside the package (a broken install) is not mistaken for the package missing.
  const inner = Object.assign(
    new Error("Cannot find package 'some-dependency' imported from /x/node_modules/@aws-sdk/client-s3/index.js"),
    {
      code: 'ERR_MODULE_NOT_FOUND',
    },
  );
  t.notOk(isMissingPackage(inner, '@aws-sdk/client-s3'));
  await t.rejects(
    loadOptional('@aws-sdk/client-s3', 'x', () => Promise.reject(inner)),
    inner,
    'rethrown as it is',
  );
  t.same(await loadOptional(absent, 'x', async () => ({ ok: 1 })), { ok: 1 }, 'present: the module itself');

  t.equal(installCommand('p@^3', pathToFileURL('/usr/lib/node_modules/credport/dist/daemon/cli/x.js').href), 'npm install -g p@^3');
  t.equal(installCommand('p@^3', pathToFileURL('/opt/homebrew/lib/node_modules/credport/dist/x.js').href), 'npm install -g p@^3');
  t.equal(installCommand('p@^3', pathToFileURL('/home/me/app/node_modules/credport/dist/x.js').href), 'npm install p@^3');
});

/**
 * The bundle (what the package ships), the compiled tree and package.json copied, node_modules linked from
 * the checkout without any AWS SDK.
 */
function withoutAwsSdk(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'credport-no-sdk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(DIST_BUNDLE, join(dir, 'dist', 'bundle'), { recursive: true });
  cpSync(DIST_DAEMON, join(dir, 'dist', 'daemon'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  const from = join(ROOT, 'node_modules');
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(from)) {
    if (name === '@aws-sdk' || name === '@smithy' || name === 'aws-sdk' || name.startsWith('.')) continue;
    symlinkSync(join(from, name), join(dir, 'node_modules', name));
  }
  return dir;
}

t.test('admin commands without their package: one line, nothing changed', async (t) => {
  const dir = withoutAwsSdk(t);
  const cli = join(dir, 'dist', 'bundle', 'credport.cjs');
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH, HOME: home, AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'test', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const premise = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('@aws-sdk/client-s3')"], {
    cwd: join(dir, 'dist', 'bundle'),
    encoding: 'utf8',
  });
  t.match(premise.stderr, /ERR_MODULE_NOT_FOUND/, 'the premise: the copy cannot resolve @aws-sdk/client-s3');

  const printed = run(['setup', 'aws', 'issuer', '--print-template', '-c', '/nonexistent']);
  t.equal(printed.status, 0, `setup aws --print-template needs no SDK: ${printed.stderr}`);
  t.ok(JSON.parse(printed.stdout).Resources, 'the template is printed');

  const setup = run(['setup', 'aws', 'issuer', '-c', '/nonexistent', '--endpoint', 'http://127.0.0.1:1']);
  t.equal(setup.status, 1, 'setup aws: exit 1');
  t.match(
    setup.stderr,
    /^credport: setup aws needs the npm package @aws-sdk\/client-cloudformation, .*install it with: npm install @aws-sdk\/client-cloudformation@\^3\.\d+\.\d+/,
  );
  t.equal(setup.stderr.trim().split('\n').length, 1, `one line: ${setup.stderr}`);
  t.notMatch(setup.stderr, /ECONNREFUSED|at .*\.js:\d+/, 'no call made, no stack trace');

  const config = join(home, 'config.toml');
  const init = run(['init', '--config', config, '--issuer', 'https://issuer.example', '--role-arn', 'arn:aws:iam::111122223333:role/dev']);
  t.equal(init.status, 0, `init: ${init.stderr}`);
  const before = readFileSync(config, 'utf8');
  const publish = run(['oidc', 'publish', 's3://credport-test-bucket/issuer', '--config', config, '--endpoint-url', 'http://127.0.0.1:1']);
  t.equal(publish.status, 1, 'oidc publish to S3: exit 1');
  t.match(
    publish.stderr,
    /^credport: writing the issuer to s3:\/\/credport-test-bucket\/issuer needs the npm package @aws-sdk\/client-s3, .*npm install @aws-sdk\/client-s3@\^3/,
  );
  t.equal(publish.stderr.trim().split('\n').length, 1, `one line: ${publish.stderr}`);
  t.equal(readFileSync(config, 'utf8'), before, 'the config is unchanged');

  const exportDir = join(dir, 'issuer-out');
  const local = run(['oidc', 'publish', exportDir, '--config', config]);
  t.equal(local.status, 0, `oidc publish to a directory needs no SDK: ${local.stderr}`);
  t.ok(existsSync(join(exportDir, '.well-known', 'jwks.json')), 'the JWKS was written');
});

// The daemon's import graph, loaded for real: a process that imports the AWS runtime (both STS providers)
// from the copy without any SDK, and makes a provider.
t.test('the AWS runtime loads without any AWS SDK installed', async (t) => {
  const dir = withoutAwsSdk(t);
  const script = join(dir, 'load.mjs');
  writeFileSync(
    script,
    `const { awsRuntime } = await import(${JSON.stringify(pathToFileURL(join(dir, 'dist', 'daemon', 'clouds', 'aws', 'runtime.js')).href)});
const { AwsAssumeRoleProvider } = await import(${JSON.stringify(pathToFileURL(join(dir, 'dist', 'daemon', 'clouds', 'aws', 'assume-role', 'provider.js')).href)});
new AwsAssumeRoleProvider({ source: async () => { throw new Error('x'); }, roleArn: 'arn:aws:iam::111122223333:role/x', region: 'eu-west-1', durationSeconds: 900, roleSessionName: 'x1' });
console.log(typeof awsRuntime.createProvider);
`,
  );
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000, cwd: dirname(script) });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), 'function');
});
