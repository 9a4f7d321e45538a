/**
 * The everyday commands as a user runs them, as real processes: exec (with a real child and a real
 * SDK), configure aws (on a real file with comments and other profiles), profiles, completion
 * (checked by the real shells), and the "did you mean" usage errors.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CLI, freePort, runCliAsync, spawnCli, waitFor } from './helpers/cli.js';
import { roleArnFor, startStack } from './helpers/stack.js';
import { parseJsonObject, readSmallFile } from '../daemon/util/secure-file.js';

// The child a test runs under `credport exec`: prints the variables exec sets or clears, then exits 7.
const PRINT_ENV = `
const keys = ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', 'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION', 'AWS_PROFILE', 'KEEP_ME'];
process.stdout.write(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null]))));
process.exit(7);`;

// A child that gets credentials the way the JS SDK v3 does from these variables (fromContainerMetadata reads them).
const PROVIDERS_URL = import.meta.resolve('@aws-sdk/credential-providers');
const SDK_FETCH = `
const { fromContainerMetadata } = await import(${JSON.stringify(PROVIDERS_URL)});
const c = await fromContainerMetadata({ timeout: 5000, maxRetries: 0 })();
process.stdout.write(JSON.stringify({ accessKeyId: c.accessKeyId }));`;

const stack = await startStack({ profiles: { default: {}, dev: {} }, daemon: { listen: `127.0.0.1:${await freePort()}` } });
t.teardown(() => stack.close());
const env = { CREDPORT_CONFIG: stack.configFile };
const port = stack.config.daemon.listen.port;

t.test('did you mean: commands, subcommands, flags, profiles; help CMD; group --help; globals before the command', async (t) => {
  const cmd = await runCliAsync(['stauts']);
  t.equal(cmd.status, 2);
  t.equal(cmd.stderr.trim().split('\n').length, 1, 'one line');
  t.match(cmd.stderr, /unknown command 'stauts' \(did you mean 'status'\?/);
  t.notMatch((await runCliAsync(['zzzzzzzz'])).stderr, /did you mean/, 'nothing near: no suggestion');
  t.match((await runCliAsync(['key', 'shwo'])).stderr, /did you mean 'key show'\?/);
  const flag = await runCliAsync(['exec', '--profil', 'dev', '--', 'true'], env);
  t.equal(flag.status, 2);
  t.match(flag.stderr, /unknown option '--profil' \(did you mean '--profile'\? see 'credport exec --help'\)/);
  const prof = await runCliAsync(['auth', '--profile', 'dve'], env);
  t.equal(prof.status, 2);
  t.match(prof.stderr, /no profile named dve .*did you mean 'dev'\?/);
  t.match((await runCliAsync(['env', '--profile', 'deb'], env)).stderr, /did you mean 'dev'\?/);
  t.match((await runCliAsync(['exec', '--profile', 'dfault', '--', 'true'], env)).stderr, /did you mean 'default'\?/);

  const help = await runCliAsync(['help', 'exec']);
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: credport exec/);
  t.match((await runCliAsync(['help', 'key', 'show'])).stdout, /^Usage: credport key show/);
  const group = await runCliAsync(['key', '--help']);
  t.equal(group.status, 0, 'a group has --help');
  t.match(group.stdout, /^Usage: credport key SUBCOMMAND/);
  t.match(group.stdout, /key show .*\n {2}key delete /);
  t.match((await runCliAsync(['help', 'cert'])).stdout, /cert csr[\s\S]*cert import[\s\S]*cert show/);

  const before = await runCliAsync(['--config', stack.configFile, '--json', 'profiles']);
  t.equal(before.status, 0, before.stderr);
  t.same(
    (JSON.parse(before.stdout) as { profiles: Array<{ name: string }> }).profiles.map((p) => p.name),
    ['default', 'dev'],
    '--config and --json before the command',
  );
  const after = await runCliAsync(['profiles', '--json', `--config=${stack.configFile}`]);
  t.equal(after.stdout, before.stdout, 'the same after the command');
});

t.test('exec: container variables for the profile, shadowing variables removed, exit code passed on', async (t) => {
  const r = await runCliAsync(['exec', '--profile', 'dev', '--', process.execPath, '-e', PRINT_ENV], {
    ...env,
    AWS_ACCESS_KEY_ID: 'AKIASTALE',
    AWS_SECRET_ACCESS_KEY: 'stale',
    AWS_SESSION_TOKEN: 'stale',
    AWS_PROFILE: 'other',
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/x',
    KEEP_ME: 'kept',
  });
  t.equal(r.status, 7, `the child's exit code (${r.stderr})`);
  const got = JSON.parse(r.stdout) as Record<string, string | null>;
  t.equal(got.AWS_CONTAINER_CREDENTIALS_FULL_URI, `http://127.0.0.1:${port}/v1/credentials/dev`);
  t.equal(got.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, stack.config.daemon.tokenFile);
  t.equal(got.AWS_CONTAINER_AUTHORIZATION_TOKEN, stack.token(), 'inline token for old SDKs');
  for (const k of [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  ])
    t.equal(got[k], null, `${k} removed`);
  t.equal(got.KEEP_ME, 'kept', 'the rest of the environment is inherited');
  t.equal(r.stderr, '', 'nothing printed by credport');

  const def = JSON.parse((await runCliAsync(['exec', '--', process.execPath, '-e', PRINT_ENV], env)).stdout) as Record<string, string>;
  t.equal(def.AWS_CONTAINER_CREDENTIALS_FULL_URI, `http://127.0.0.1:${port}/v1/credentials`, 'default profile: the path env prints');

  const killed = await runCliAsync(['exec', '--', '/bin/sh', '-c', 'kill -TERM $$'], env);
  t.equal(killed.status, 143, `killed by SIGTERM: 128+15 (${killed.stderr})`);
  const missing = await runCliAsync(['exec', '--', 'credport-no-such-command-here'], env);
  t.equal(missing.status, 127);
  t.match(missing.stderr, /cannot run "credport-no-such-command-here": command not found/);
  const noDashes = await runCliAsync(['exec', 'true'], env);
  t.equal(noDashes.status, 2);
  t.match(noDashes.stderr, /no command to run.*after '--'/);
  t.equal((await runCliAsync(['exec', '--'], env)).status, 2, 'nothing after --');
  const argv = await runCliAsync(
    ['exec', '--', process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', 'a b', '$HOME', '--help'],
    env,
  );
  t.same(JSON.parse(argv.stdout), ['a b', '$HOME', '--help'], "arguments passed as given, no shell, flags after -- are the child's");
});

// A shell child, not node: under tap every node process gets signal handlers injected (its
// process-info hooks), which would change what a signal does to it.
t.test("exec: signals sent to credport reach the child, whose exit code is credport's", async (t) => {
  for (const [sig, code] of [
    ['SIGTERM', 5],
    ['SIGINT', 6],
    ['SIGHUP', 9],
  ] as const) {
    const name = sig.slice(3);
    const script = `trap 'echo got ${sig}; kill $! 2>/dev/null; exit ${code}' ${name}; echo ready; sleep 30 & wait $!; exit 99`;
    const p = spawnCli(['exec', '--', '/bin/sh', '-c', script], env);
    t.teardown(() => p.child.kill('SIGKILL'));
    await waitFor(() => (p.stdout().includes('ready') ? true : undefined));
    p.child.kill(sig);
    t.equal(await p.exited, code, `${sig}: the child's own exit code`);
    t.match(p.stdout(), `got ${sig}`, `${sig} forwarded`);
  }
});

t.test('exec: a real SDK in the child gets credentials through the daemon', async (t) => {
  const r = await runCliAsync(['exec', '--profile', 'dev', '--', process.execPath, '--input-type=module', '-e', SDK_FETCH], env);
  t.equal(r.status, 0, r.stderr);
  const { accessKeyId } = JSON.parse(r.stdout) as { accessKeyId: string };
  const issued = stack.emulator.issued(accessKeyId);
  t.ok(issued, 'credentials the emulator issued');
  t.equal(issued?.roleArn, roleArnFor('role-dev'), "the dev profile's role");
});

t.test('exec --env-credentials: static credentials fetched once, container variables cleared', async (t) => {
  const r = await runCliAsync(['exec', '--env-credentials', '--', process.execPath, '-e', PRINT_ENV], {
    ...env,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://127.0.0.1:1/x',
  });
  t.equal(r.status, 7, r.stderr);
  const got = JSON.parse(r.stdout) as Record<string, string | null>;
  const issued = stack.emulator.issued(String(got.AWS_ACCESS_KEY_ID));
  t.ok(issued, 'the access key the emulator issued');
  t.equal(got.AWS_SECRET_ACCESS_KEY, issued?.secretAccessKey);
  t.equal(got.AWS_SESSION_TOKEN, issued?.sessionToken);
  t.match(String(got.AWS_CREDENTIAL_EXPIRATION), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.equal(got.AWS_CONTAINER_CREDENTIALS_FULL_URI, null, 'no container URI to compete');
  t.equal(got.AWS_CONTAINER_AUTHORIZATION_TOKEN, null);
  t.notMatch(r.stderr, String(issued?.secretAccessKey), 'credport prints no secret');
});

const AWS_CONFIG = `# my AWS config; keep this comment
[default]
region = eu-west-1   ; inline remark
output = json

# the work account
[profile work]
region = us-east-1
credential_process = /old/path/credport auth --profile old

[profile other]
sso_session = corp
# trailing comment, no newline at the end`;

t.test('configure aws: writes credential_process, keeps every other byte, idempotent, atomic, mode kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-aws-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config');
  writeFileSync(file, AWS_CONFIG);
  chmodSync(file, 0o640);
  const awsEnv = { ...env, AWS_CONFIG_FILE: file };

  const dry = await runCliAsync(['configure', 'aws', '--profile', 'dev', '--aws-profile', 'work', '--dry-run'], awsEnv);
  t.equal(dry.status, 0, dry.stderr);
  t.match(dry.stdout, /^\[profile work\]\nregion = us-east-1\ncredential_process = .*auth --profile dev --config /);
  t.equal(readFileSync(file, 'utf8'), AWS_CONFIG, '--dry-run changes nothing');

  const r = await runCliAsync(['configure', 'aws', '--profile', 'dev', '--aws-profile', 'work'], awsEnv);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /updated: \[profile work\]/);
  const after = readFileSync(file, 'utf8');
  const line = /^credential_process = (.*)$/m.exec(after)?.[1] ?? '';
  t.equal(
    after,
    AWS_CONFIG.replace('credential_process = /old/path/credport auth --profile old', `credential_process = ${line}`),
    'only the owned key changed, in place',
  );
  t.match(line, / auth --profile dev --config /, 'names the non-default config');
  t.equal(statSync(file).mode & 0o777, 0o640, "the file's mode kept");
  t.same(spawnSync('ls', [dir], { encoding: 'utf8' }).stdout.trim().split('\n'), ['config'], 'no temporary file left behind');

  // The written command really works as credential_process (SDKs run it through sh or shlex).
  // Asynchronously: the daemon it asks runs in this process.
  const cp = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn('/bin/sh', ['-c', line], { env: { PATH: process.env.PATH, HOME: dir } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  t.equal(cp.status, 0, cp.stderr);
  const out = JSON.parse(cp.stdout) as { Version: number; AccessKeyId: string };
  t.equal(out.Version, 1);
  t.equal(stack.emulator.issued(out.AccessKeyId)?.roleArn, roleArnFor('role-dev'));

  const again = await runCliAsync(['configure', 'aws', '--profile', 'dev', '--aws-profile', 'work'], awsEnv);
  t.equal(again.status, 0);
  t.match(again.stdout, /unchanged/);
  t.equal(readFileSync(file, 'utf8'), after, 'a second run is byte-for-byte the same');

  const added = await runCliAsync(['configure', 'aws', '--aws-profile', 'default', '--file', file], { CREDPORT_CONFIG: stack.configFile });
  t.equal(added.status, 0, added.stderr);
  const withDefault = readFileSync(file, 'utf8');
  t.ok(
    withDefault.startsWith(
      `# my AWS config; keep this comment\n[default]\nregion = eu-west-1   ; inline remark\noutput = json\ncredential_process = `,
    ),
    'added after the last key of [default]',
  );
  t.equal(
    withDefault.slice(withDefault.indexOf('\n# the work account')),
    after.slice(after.indexOf('\n# the work account')),
    'the rest untouched',
  );

  const fresh = await runCliAsync(['configure', 'aws', '--profile', 'dev', '--aws-profile', 'dev'], awsEnv);
  t.equal(fresh.status, 0);
  const appended = readFileSync(file, 'utf8');
  t.ok(appended.startsWith(withDefault), 'a new section is appended, everything before it kept');
  t.match(
    appended.slice(withDefault.length),
    /^\n\n\[profile dev\]\ncredential_process = .* auth --profile dev --config .*\n$/,
    'after a newline for the unterminated last line',
  );

  const warn = await runCliAsync(['configure', 'aws', '--profile', 'dev', '--aws-profile', 'other'], awsEnv);
  t.equal(warn.status, 0);
  t.match(warn.stderr, /warning: \[profile other\] also sets sso_session/);
});

t.test('configure aws: creates ~/.aws 0700 and the file 0600; refuses container and bad names', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'credport-home-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const r = await runCliAsync(['configure', 'aws', '--profile', 'dev'], { ...env, HOME: home });
  t.equal(r.status, 0, r.stderr);
  t.equal(statSync(join(home, '.aws')).mode & 0o777, 0o700);
  t.equal(statSync(join(home, '.aws', 'config')).mode & 0o777, 0o600);
  t.match(readFileSync(join(home, '.aws', 'config'), 'utf8'), /^\[profile dev\]\ncredential_process = /);

  const container = await runCliAsync(['configure', 'aws', '--method', 'container'], { ...env, HOME: home });
  t.equal(container.status, 2);
  t.equal(container.stderr.trim().split('\n').length, 1, 'one line');
  t.match(container.stderr, /cannot point a profile at a container-credentials endpoint.*credport exec/);
  const bad = await runCliAsync(['configure', 'aws', '--aws-profile', 'a b]'], { ...env, HOME: home });
  t.equal(bad.status, 2);
  t.notOk(existsSync(join(home, '.aws', 'config.tmp')));
  t.match(
    readFileSync(join(home, '.aws', 'config'), 'utf8'),
    /^\[profile dev\]\ncredential_process = [^\n]*\n$/,
    'nothing changed by refused runs',
  );
});

t.test('profiles: type, URLs and state, with and without a daemon', async (t) => {
  await waitFor(async () => {
    const h = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { profiles: Record<string, { state: string }> };
    return h.profiles.dev?.state === 'ok' && h.profiles.default?.state === 'ok' ? true : undefined;
  });
  const r = await runCliAsync(['profiles'], env);
  t.equal(r.status, 0, r.stderr);
  t.match(
    r.stdout,
    new RegExp(`default\\*\\s+aws-oidc\\s+ok\\s+ECS  http://127.0.0.1:${port}/v1/credentials\\n\\s+IMDS http://127.0.0.1:${port}\\n`),
  );
  t.match(r.stdout, new RegExp(`dev\\s+aws-oidc\\s+ok\\s+ECS  http://127.0.0.1:${port}/v1/credentials/dev\\n`));

  const down = await startStack({
    startDaemon: false,
    profiles: { default: {}, ops: {} },
    daemon: { listen: `127.0.0.1:${await freePort()}` },
  });
  t.teardown(() => down.close());
  const none = await runCliAsync(['profiles', '--json'], { CREDPORT_CONFIG: down.configFile });
  t.equal(none.status, 0, 'listing works without a daemon');
  const j = JSON.parse(none.stdout) as {
    daemon: { running: boolean };
    profiles: Array<{ name: string; state: string; type: string; endpoints: Array<{ label: string; url: string }> }>;
  };
  t.equal(j.daemon.running, false);
  t.same(
    j.profiles.map((p) => [p.name, p.state, p.type]),
    [
      ['default', 'daemon not running', 'aws-oidc'],
      ['ops', 'daemon not running', 'aws-oidc'],
    ],
  );
  t.ok(
    j.profiles[0]?.endpoints.some((e) => e.label === 'IMDS'),
    'the default profile has IMDS',
  );
  t.notOk(
    j.profiles[1]?.endpoints.some((e) => e.label === 'IMDS'),
    'another profile has not',
  );
});

const scripts = mkdtempSync(join(tmpdir(), 'credport-completion-'));
t.teardown(() => rmSync(scripts, { recursive: true, force: true }));

/** Runs `shell ...args FILE` on the script (undefined when the shell is not installed). */
function shellCheck(shell: string, args: string[], script: string): { status: number | null; stdout: string; stderr: string } | undefined {
  if (spawnSync(shell, ['-c', 'exit 0']).error) return undefined;
  const file = join(scripts, `script.${shell}`);
  writeFileSync(file, script);
  const r = spawnSync(shell, [...args, file], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: scripts } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('completion: every command and flag, valid for the real shells', async (t) => {
  const bash = await runCliAsync(['completion', 'bash']);
  t.equal(bash.status, 0);
  for (const w of ['exec', 'configure', 'profiles', 'completion', '--env-credentials', '--dry-run', '--aws-profile'])
    t.match(bash.stdout, w);
  t.equal(shellCheck('bash', ['-n'], bash.stdout)?.status, 0, 'bash -n');
  // Drive the function as bash would on TAB.
  const driven = shellCheck(
    'bash',
    [],
    `${bash.stdout}
COMP_WORDS=(credport exec --env); COMP_CWORD=2; _credport; echo "\${COMPREPLY[*]}"
COMP_WORDS=(credport key ''); COMP_CWORD=2; _credport; echo "\${COMPREPLY[*]}"
COMP_WORDS=(credport sta); COMP_CWORD=1; _credport; echo "\${COMPREPLY[*]}"`,
  );
  t.same(driven?.stdout.trim().split('\n'), ['--env-credentials', 'show delete rotate --help', 'status']);
  for (const [shell, flag] of [
    ['zsh', '-n'],
    ['fish', '--no-execute'],
  ] as const) {
    const script = await runCliAsync(['completion', shell]);
    t.equal(script.status, 0);
    const checked = shellCheck(shell, [flag], script.stdout);
    if (!checked) {
      t.comment(`${shell} not installed (scripts/system-deps.sh installs it): not checked`);
      continue;
    }
    t.equal(checked.status, 0, `${shell} ${flag}: ${checked.stderr}`);
  }
  const fish = (await runCliAsync(['completion', 'fish'])).stdout;
  const f = shellCheck('fish', [], `${fish}\ncomplete -C 'credport configure aws --dry'`);
  if (f) t.match(f.stdout, /--dry-run/, 'fish completes a flag');
  const bad = await runCliAsync(['completion', 'tcsh']);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /bash, zsh or fish/);
});

/** `credport serve` on a terminal (script(1) gives it one), until it says it started; its output. */
async function serveOnTerminal(extraEnv: Record<string, string>): Promise<string> {
  const own = await startStack({ startDaemon: false, daemon: { listen: `127.0.0.1:${await freePort()}` } });
  try {
    const child = spawn('script', ['-qec', `${process.execPath} ${CLI} serve`, '/dev/null'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CREDPORT_CONFIG: own.configFile, ...extraEnv },
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise((resolve) => child.on('close', resolve));
    try {
      await waitFor(() => (/daemon started/.test(out) ? true : undefined));
    } finally {
      // script(1) runs the daemon in a session of its own, and the daemon takes the SIGHUP of a closing
      // terminal as "reload": it is stopped by its pid, from its lock file, before script is.
      const lock = readSmallFile(own.config.daemon.lockFile);
      const pid = lock ? Number(parseJsonObject(lock)?.pid) : NaN;
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
          await waitFor(() => (existsSync(`/proc/${pid}`) ? undefined : true), 100);
        } catch {
          // already gone
        }
      }
      try {
        process.kill(-(child.pid ?? 0), 'SIGTERM');
      } catch {
        // already gone
      }
      await closed;
    }
    return out;
  } finally {
    await own.close();
  }
}

t.test("NO_COLOR: the daemon's terminal log has no colour codes when it is set", async (t) => {
  if (spawnSync('script', ['-qec', 'true', '/dev/null']).status !== 0) {
    t.comment('script(1) not available: no terminal to test on');
    return;
  }
  const coloured = await serveOnTerminal({});
  t.match(coloured, '\x1b[', 'on a terminal the log is coloured');
  const plain = await serveOnTerminal({ NO_COLOR: '1' });
  t.match(plain, /INFO.*credport daemon started/, 'the same log');
  t.notMatch(plain, '\x1b[', 'without colour codes');
});
