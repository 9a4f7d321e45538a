/**
 * The slim path of `auth`, `env` and `status` (daemon/cli/fast/): with a `credport serve` process
 * running, the CLI answers from the daemon's runtime file without parsing or validating the config,
 * and prints exactly what the full path prints. Whatever casts doubt on that file (other config
 * bytes, a dead or different daemon, a file others could have written) sends the command down the
 * full path. Which path ran is read from the modules the process loaded (helpers/trace-loads.ts).
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DEFAULT_LOCK_FILE } from '../daemon/cli/fast/find-daemon.js';
import { CLOUD_CLIS } from '../daemon/clouds/cli-loaders.js';
import { CLOUDS } from '../daemon/clouds/registry.js';
import { ConfigSchema } from '../daemon/config/schema.js';
import { freePort, runCliAsync, spawnCli, waitFor } from './helpers/cli.js';
import { gcpWifProfile, trustStackIssuer } from './helpers/gcp-pool.js';
import { full, notSlim, slim, tracer } from './helpers/slim-path.js';
import { startStack } from './helpers/stack.js';

const { traced } = tracer(t);
const dir = mkdtempSync(join(tmpdir(), 'credport-fast-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// A fixed port, so that the full path (which reads it from the config when it does not believe the
// runtime file) reaches the same daemon.
const stack = await startStack({
  startDaemon: false,
  daemon: { listen: `127.0.0.1:${await freePort()}` },
  profiles: {
    default: {},
    other: {},
    gcp: gcpWifProfile(),
  },
  beforeStart: trustStackIssuer,
});
t.teardown(() => stack.close());
const serve = spawnCli(['serve', '--config', stack.configFile]);
t.teardown(async () => {
  serve.child.kill('SIGTERM');
  await serve.exited;
});
const runtimeFile = join(stack.dir, 'daemon.runtime.json');
const lockFile = join(stack.dir, 'daemon.pid');
await waitFor(async () => ((await runCliAsync(['status', '--config', stack.configFile])).status === 0 ? true : undefined), 300);

// The same config through a symbolic link: the same bytes, the same daemon, but another path than
// the one the daemon loaded, so the CLI takes its full path. What that prints is what the slim path must.
const linked = join(dir, 'linked.toml');
symlinkSync(stack.configFile, linked);

const COMMANDS: Array<{ args: string[]; answered: RegExp; cloud: string }> = [
  { args: ['auth', '--format', 'credential_process'], answered: /^\{"Version":1,"AccessKeyId":"ASIA/, cloud: 'aws' },
  { args: ['auth', '--profile', 'other', '--format', 'env'], answered: /^export AWS_ACCESS_KEY_ID='ASIA/, cloud: 'aws' },
  {
    args: ['env', '--profile', 'other'],
    answered: /AWS_CONTAINER_CREDENTIALS_FULL_URI='http:\/\/127\.0\.0\.1:\d+\/v1\/credentials\/other'/,
    cloud: 'aws',
  },
  { args: ['auth', '--profile', 'gcp', '--format', 'json'], answered: /"access_token": "/, cloud: 'gcp' },
  { args: ['env', '--profile', 'gcp'], answered: /^export GOOGLE_APPLICATION_CREDENTIALS='.*gcp-gcp\.credentials\.json'/, cloud: 'gcp' },
  { args: ['status'], answered: /default\*\s+ok/, cloud: 'none' },
];

/** status prints the uptime and times relative to now (and pads its columns to them): equal up to those. */
const stable = (s: string): string =>
  s
    .replace(/up \d+s/, 'up Ns')
    .replace(/\b\d+[hms](\d+[ms])?(\d+s)?\b/g, 'T')
    .replace(/ +/g, ' ');

t.test('with the daemon running, auth, env and status take the slim path and print what the full path prints', async (t) => {
  for (const c of COMMANDS) {
    const r = traced([...c.args, '--config', stack.configFile]);
    t.equal(r.status, 0, `${c.args.join(' ')}: ${r.stderr}`);
    t.match(r.stdout, c.answered, `${c.args.join(' ')}: answered`);
    t.ok(slim(r), `${c.args.join(' ')}: the slim path ran`);
    for (const f of notSlim(c.cloud))
      t.same(
        r.loaded.filter((u) => f.re.test(u)),
        [],
        `${c.args.join(' ')}: no ${f.what}`,
      );
    const f = traced([...c.args, '--config', linked]);
    t.ok(full(f), `${c.args.join(' ')}: the full path ran for the linked config`);
    t.equal(f.status, r.status);
    t.equal(stable(f.stdout), stable(r.stdout), `${c.args.join(' ')}: the same output both ways`);
    t.equal(f.stderr, r.stderr);
  }
});

t.test('usage the slim path does not know goes to the full path, with its usual errors', async (t) => {
  const unknown = traced(['auth', '--profile', 'nope', '--config', stack.configFile]);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /^credport: no profile named nope in .*config\.toml \(profiles: default, other, gcp\)\n$/);
  t.ok(full(unknown), 'an unknown profile: the full path');
  const format = traced(['auth', '--format', 'token', '--config', stack.configFile]);
  t.equal(format.status, 2);
  t.match(format.stderr, /--format: expected credential_process, env, json/);
  t.ok(full(format));
  const flag = traced(['env', '--bogus', '--config', stack.configFile]);
  t.equal(flag.status, 2);
  t.match(flag.stderr, /unknown option '--bogus'/);
  const executable = traced(['auth', '--profile', 'gcp', '--format', 'executable', '--config', stack.configFile]);
  t.equal(executable.status, 0, executable.stderr);
  t.match(executable.stdout, /"success":true/);
  t.ok(full(executable), "Google's executable format (which may need the key): the full path");
  const leading = traced(['--config', stack.configFile, 'auth']);
  t.equal(leading.status, 0, '--config before the command');
  t.ok(slim(leading), 'still the slim path');
});

/** Runs every command and checks that it answered correctly through the full path. */
function allFull(t: Test, why: string, configFile = stack.configFile): void {
  for (const c of COMMANDS) {
    const r = traced([...c.args, '--config', configFile]);
    t.equal(r.status, 0, `${why}: ${c.args.join(' ')}: ${r.stderr}`);
    t.match(r.stdout, c.answered, `${why}: ${c.args.join(' ')} answered`);
    t.ok(full(r) && !slim(r), `${why}: ${c.args.join(' ')} took the full path`);
  }
}

/** Rewrites the runtime file (or the lock) for the length of `body`, then puts the original back. */
async function tampered(file: string, change: (text: string) => string, body: () => Promise<void> | void): Promise<void> {
  const original = readFileSync(file, 'utf8');
  writeFileSync(file, change(original), { mode: 0o600 });
  try {
    await body();
  } finally {
    writeFileSync(file, original, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

t.test('a runtime file that cannot be believed is not', async (t) => {
  await tampered(
    runtimeFile,
    (s) => s,
    () => {
      chmodSync(runtimeFile, 0o644);
      allFull(t, 'runtime file readable by others');
    },
  );
  await tampered(
    runtimeFile,
    (s) => s.replace(/"instance": "[0-9a-f]+"/, `"instance": "${'0'.repeat(32)}"`),
    () => allFull(t, 'another instance than the lock names'),
  );
  const dead = deadPid();
  await tampered(
    runtimeFile,
    (s) => s.replace(/"pid": \d+/, `"pid": ${dead}`),
    async () => {
      // The lock names the same dead process too: consistent, and still not a running daemon.
      await tampered(
        lockFile,
        (s) => s.replace(/"pid":\d+/, `"pid":${dead}`),
        () => {
          for (const c of COMMANDS.slice(0, 3)) {
            const r = traced([...c.args, '--config', stack.configFile]);
            t.ok(full(r) && !slim(r), `a dead pid: ${c.args.join(' ')} took the full path`);
          }
        },
      );
    },
  );
  await tampered(
    runtimeFile,
    (s) => s.replace(/"defaultProfile": "default"/, '"defaultProfile": "other"'),
    () => {
      // Written by this user with the right mode: believed, as the daemon's own word. (Shows that the
      // checks above, not the content, sent those runs down the full path.)
      const r = traced(['env', '--config', stack.configFile]);
      t.ok(slim(r));
      t.match(r.stdout, /\/v1\/credentials\/other'/);
    },
  );
  const ok = traced(['auth', '--config', stack.configFile]);
  t.ok(slim(ok), 'the restored file is believed again');
});

t.test('other config bytes: the full path, until a reload publishes them', async (t) => {
  appendFileSync(stack.configFile, '# a comment: other bytes, the same config\n');
  allFull(t, 'config edited');
  const before = JSON.parse(readFileSync(runtimeFile, 'utf8')).client.configSha256;
  const reload = await runCliAsync(['reload', '--config', stack.configFile]);
  t.equal(reload.status, 0, reload.stderr);
  await waitFor(() => (JSON.parse(readFileSync(runtimeFile, 'utf8')).client.configSha256 !== before ? true : undefined), 100);
  const r = traced(['auth', '--config', stack.configFile]);
  t.equal(r.status, 0, r.stderr);
  t.ok(slim(r), 'the reloaded bytes are vouched for');
});

t.test('a config naming no lock_file: the default lock, in the environment the daemon resolved it in', async (t) => {
  const other = await startStack({ startDaemon: false, daemon: { listen: `127.0.0.1:${await freePort()}` } });
  const text = readFileSync(other.configFile, 'utf8');
  t.match(text, /^lock_file = ".*"$/m);
  writeFileSync(other.configFile, text.replace(/^lock_file = ".*"\n/m, ''));
  const env = { XDG_STATE_HOME: join(other.dir, 'state') };
  const d = spawnCli(['serve', '--config', other.configFile], env);
  try {
    await waitFor(() => (existsSync(join(env.XDG_STATE_HOME, 'credport', 'daemon.runtime.json')) ? true : undefined), 300);
    await waitFor(async () => ((await runCliAsync(['status', '--config', other.configFile], env)).status === 0 ? true : undefined), 300);
    const r = traced(['auth', '--config', other.configFile], env);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^\{"Version":1,"AccessKeyId":"ASIA/);
    t.ok(slim(r), 'found beside the default lock');
    // The daemon expanded $XDG_STATE_HOME with another value than this shell has: not vouched for.
    const elsewhere = traced(['auth', '--config', other.configFile], { XDG_STATE_HOME: join(other.dir, 'elsewhere') });
    t.equal(elsewhere.status, 0, elsewhere.stderr);
    t.ok(full(elsewhere), 'another XDG_STATE_HOME: the full path');
  } finally {
    d.child.kill('SIGTERM');
    await d.exited;
    await other.close();
  }
});

t.test('the slim path lists every cloud and the schema default of lock_file', async (t) => {
  t.same(Object.keys(CLOUD_CLIS).sort(), CLOUDS.map((c) => c.name).sort());
  for (const c of CLOUDS) t.equal(await CLOUD_CLIS[c.name]!(), await c.cli(), `${c.name}: the same CLI half`);
  t.equal(DEFAULT_LOCK_FILE, (ConfigSchema.properties.daemon.properties.lock_file as { default: string }).default);
});
