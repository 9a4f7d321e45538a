/**
 * The client side of user isolation, with real processes: the CLI refuses to
 * talk to a port another user has taken (and sends it no token), `localhost`
 * is bound on both loopback addresses even where /etc/hosts names ::1 first,
 * and a config other users can rewrite, or one that sends the JWT over plain
 * http to another host, is refused before anything happens.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import t from 'tap';
import { generateToken } from '../daemon/server/token.js';
import { CLI, freePort, runCliAsync, waitFor } from './helpers/cli.js';
import { createUser, rootForUsers, type LocalUser } from './helpers/second-user.js';
import { startStack, type Stack } from './helpers/stack.js';
import { needs, tool } from './helpers/tools.js';

const unshare = tool(
  'unshare and mount (util-linux, as root)',
  () => process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true'], { stdio: 'ignore' }).status === 0,
  'apt-get install util-linux',
);

let stack: Stack;
let user: LocalUser | undefined;
t.before(async () => {
  stack = await startStack({ startDaemon: false });
  if (rootForUsers.present) user = createUser();
});
t.teardown(async () => {
  await stack?.close();
  user?.remove();
});

function withConfig(dir: string, mutate: (doc: Record<string, Record<string, unknown>>) => void): string {
  const doc = parse(readFileSync(stack.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  mutate(doc);
  const file = join(dir, 'config.toml');
  writeFileSync(file, stringify(doc), { mode: 0o644 });
  return file;
}

t.test('the CLI sends nothing to a port another user has taken', needs(rootForUsers), async (t) => {
  const u = user!;
  const port = await freePort();
  // The squatter answers like a daemon would and prints every request head it receives.
  const squatter = spawn(
    process.execPath,
    [
      '-e',
      `require('http').createServer((req,res)=>{process.stdout.write(JSON.stringify(req.headers)+'\\n');res.setHeader('content-type','application/json');res.end(JSON.stringify({AccessKeyId:'ASIAFAKE',SecretAccessKey:'x',Token:'y',Expiration:'2099-01-01T00:00:00Z',status:'ok',version:'x',profiles:{}}))}).listen(${port},'127.0.0.1',()=>process.stdout.write('ready\\n'))`,
    ],
    { uid: u.uid, gid: u.gid, cwd: '/' },
  );
  let heard = '';
  squatter.stdout.on('data', (d: Buffer) => (heard += d.toString()));
  t.teardown(() => squatter.kill('SIGKILL'));
  await waitFor(() => (heard.includes('ready') ? true : undefined));

  const dir = mkdtempSync(join(tmpdir(), 'credport-squat-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, generateToken(), { mode: 0o600 });
  const cfg = withConfig(dir, (d) => {
    d.daemon = { ...d.daemon, listen: `127.0.0.1:${port}`, token_file: tokenFile };
  });
  const auth = await runCliAsync(['auth', '--config', cfg]);
  t.equal(auth.status, 1, 'credport auth fails');
  t.match(auth.stderr, new RegExp(`runs as uid ${u.uid}, not as the daemon's user`), 'and says who holds the port');
  t.notMatch(auth.stdout, /ASIAFAKE/, "the squatter's credentials are not printed");
  const status = await runCliAsync(['status', '--config', cfg]);
  t.not(status.status, 0, 'credport status fails too');
  t.match(status.stderr, /runs as uid/, 'with the same reason');
  t.equal(heard.trim(), 'ready', 'the squatter received no request at all, so no token');
});

t.test('localhost is bound on 127.0.0.1 and ::1 even where /etc/hosts names ::1 first', needs(unshare), async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-hosts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, '::1 localhost ip6-localhost\n127.0.0.1 localhost\n');
  const port = await freePort();
  const cfg = withConfig(dir, (d) => {
    d.daemon = { ...d.daemon, listen: `localhost:${port}`, token_file: join(dir, 'token'), lock_file: join(dir, 'daemon.pid') };
  });
  // A private mount namespace: this /etc/hosts is seen by the daemon only.
  const daemon = spawn(
    'unshare',
    ['-m', 'sh', '-c', 'mount --bind "$1" /etc/hosts && exec "$2" "$3" serve --config "$4"', 'sh', hosts, process.execPath, CLI, cfg],
    {
      env: { PATH: process.env.PATH },
    },
  );
  let err = '';
  daemon.stderr.on('data', (d: Buffer) => (err += d.toString()));
  t.teardown(() => daemon.kill('SIGKILL'));
  const health = (addr: string) =>
    fetch(`http://${addr}:${port}/health`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status,
      () => 0,
    );
  await waitFor(async () => ((await health('127.0.0.1')) === 200 ? true : daemon.exitCode !== null ? true : undefined), 200);
  t.equal(daemon.exitCode, null, `the daemon runs ${err.slice(0, 300)}`);
  t.equal(await health('127.0.0.1'), 200, '127.0.0.1 is served');
  t.equal(await health('[::1]'), 200, '::1 is served');
  // Nobody else can take either address on that port.
  for (const host of ['127.0.0.1', '::1']) {
    const taken = await new Promise<string>((resolve) => {
      const s = createServer();
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.listen({ host, port, ipv6Only: host === '::1' }, () => s.close(() => resolve('bound')));
    });
    t.equal(taken, 'EADDRINUSE', `${host}:${port} cannot be bound by another process`);
  }
});

t.test('a config others can rewrite, or plain http to another host, is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-perms-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = withConfig(dir, () => undefined);
  chmodSync(cfg, 0o666);
  let r = await runCliAsync(['auth', '--config', cfg]);
  t.equal(r.status, 3, '0666 config: exit 3');
  t.match(r.stderr, /writable by other users \(mode 666\); run: chmod go-w/, '0666 config: says why and how to fix it');
  t.equal(r.stderr.trim().split('\n').length <= 2, true, 'a short error');
  chmodSync(cfg, 0o644);
  chmodSync(dir, 0o777);
  r = await runCliAsync(['doctor', '--config', cfg]);
  t.match(r.stdout + r.stderr, /folder .* is writable by other users/, 'a 0777 folder: doctor says so');
  t.not(r.status, 0, 'doctor fails');
  chmodSync(dir, 0o1777);
  r = await runCliAsync(['env', '--config', cfg]);
  t.notMatch(r.stderr, /writable by other users/, 'a sticky folder like /tmp is fine');
  chmodSync(dir, 0o700);
  const sub = join(dir, 'http');
  mkdirSync(sub, { mode: 0o700 });
  const plain = withConfig(sub, (d) => {
    d.profiles = {
      default: { ...(d.profiles as Record<string, Record<string, unknown>>).default, sts_endpoint: 'http://sts.example.com' },
    };
  });
  r = await runCliAsync(['auth', '--config', plain]);
  t.equal(r.status, 3, 'plain http to a non-loopback STS: exit 3');
  t.match(r.stderr, /sts_endpoint: must use https/, 'names the key and the rule');
});
