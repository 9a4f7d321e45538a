/**
 * `credport service` on both platforms. launchctl does not exist on Linux and
 * systemctl cannot manage units inside this sandbox, so each is replaced by a
 * stand-in put first on PATH that records its arguments and answers like the
 * real tool; the files credport writes are checked by the real parsers
 * (plistutil, systemd-analyze verify).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DAEMON_NODE_FLAGS } from '../daemon/service/node-flags.js';
import { CLI, runCliAsync } from './helpers/cli.js';
import { assertPresent, needs, plistutil, systemdAnalyze } from './helpers/tools.js';

/** The daemon's node flags as ExecStart quotes them (plain words: no regex specials to escape). */
const FLAGS = DAEMON_NODE_FLAGS.map((f) => `"${f}"`).join(' ');

/** A directory with spaces in its path, as a Mac home folder or an app bundle may have. */
function setup(tool: 'launchctl' | 'systemctl', script: string) {
  const root = mkdtempSync(join(tmpdir(), 'credport service '));
  const home = join(root, 'Home Dir');
  const bin = join(root, 'bin');
  mkdirSync(home, { recursive: true });
  mkdirSync(bin);
  const log = join(root, 'calls.log');
  // The stand-in logs one line per call and answers from a small state machine in files.
  writeFileSync(join(bin, tool), `#!/bin/sh\nprintf '%s\\n' "$*" >> "${log}"\nSTATE="${root}/state"\n${script}\n`);
  chmodSync(join(bin, tool), 0o755);
  const config = join(home, 'credport config.toml');
  writeFileSync(
    config,
    `[daemon]\nlisten = "127.0.0.1:0"\ntoken_file = "${join(home, 'state', 'token')}"\nlock_file = "${join(home, 'state', 'daemon.pid')}"\n\n[oidc]\nissuer = "https://issuer.example"\n\n[profiles.default]\ntype = "aws-oidc"\nrole_arn = "arn:aws:iam::111122223333:role/dev"\n`,
  );
  const env = { HOME: home, PATH: `${bin}:${process.env.PATH ?? ''}`, CREDPORT_CONFIG: config };
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return { root, home, config, env, calls };
}

const LAUNCHCTL = `
case "$1" in
  print) if [ -f "$STATE.loaded" ]; then printf 'gui/501/dev.credport.daemon = {\\n\\tstate = running\\n\\tpid = 4242\\n\\tlast exit code = 0\\n}\\n'; exit 0; fi
         echo "Could not find service \\"dev.credport.daemon\\" in domain for user gui: 501" >&2; exit 113 ;;
  bootstrap) if [ -f "$STATE.fail5" ]; then rm "$STATE.fail5"; echo "Bootstrap failed: 5: Input/output error" >&2; exit 5; fi
             touch "$STATE.loaded"; exit 0 ;;
  bootout) if [ -f "$STATE.loaded" ]; then rm "$STATE.loaded"; exit 0; fi; echo "Boot-out failed: 3: No such process" >&2; exit 3 ;;
  kickstart|kill) if [ -f "$STATE.loaded" ]; then exit 0; fi; echo "Could not find service" >&2; exit 113 ;;
esac
exit 0`;

t.test(
  'launchd (stand-in launchctl; launchctl does not exist on Linux): install, idempotence, upgrade, errors',
  needs(plistutil),
  async (t) => {
    if (!assertPresent(t, plistutil)) return;
    const s = setup('launchctl', LAUNCHCTL);
    const env = { ...s.env, CREDPORT_SERVICE_MANAGER: 'launchd' };
    const plist = join(s.home, 'Library', 'LaunchAgents', 'dev.credport.daemon.plist');

    const install = await runCliAsync(['service', 'install'], env);
    t.equal(install.status, 0, install.stderr);
    t.ok(existsSync(plist), 'plist written to ~/Library/LaunchAgents');
    const uid = String(process.getuid?.() ?? 0);
    t.same(s.calls(), [`print gui/${uid}/dev.credport.daemon`, `bootstrap gui/${uid} ${plist}`], 'checks, then bootstraps into gui/<uid>');

    // plistutil (libplist, the parser Apple's format is checked with here) must read it and convert it to
    // binary; Python's plistlib then reads that binary back, so the values are checked by two parsers.
    const bin = join(s.root, 'plist.bin');
    const conv = spawnSync('plistutil', ['-i', plist, '-o', bin, '-f', 'bin'], { encoding: 'utf8' });
    // plistutil 2.2 exits 0 even when it fails; the output file and its stderr tell.
    t.ok(
      conv.status === 0 && existsSync(bin) && !/ERROR/.test(conv.stdout + conv.stderr),
      `plistutil parses the plist: ${conv.stdout}${conv.stderr}`,
    );
    const json = spawnSync(
      'python3',
      ['-c', 'import plistlib, json, sys; print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))', bin],
      { encoding: 'utf8' },
    );
    t.equal(json.status, 0, json.stderr);
    const p = JSON.parse(json.stdout) as Record<string, unknown>;
    t.equal(p.Label, 'dev.credport.daemon');
    const args = p.ProgramArguments as string[];
    t.equal(args[0], process.execPath, 'absolute node');
    const flags = DAEMON_NODE_FLAGS.length;
    t.same(args.slice(1, 1 + flags), DAEMON_NODE_FLAGS, "the daemon's node flags, one argument each");
    t.match(args[1 + flags], /\/dist\/bundle\/credport\.cjs$/, "the package's bin (the bundle), no transpiler");
    t.same(args.slice(2 + flags), ['serve', '--config', s.config], 'config path with spaces kept as one argument');
    t.equal(p.RunAtLoad, true);
    t.same(p.KeepAlive, { SuccessfulExit: false }, 'restart on crash, not after a clean stop');
    t.type(p.ThrottleInterval, 'number');
    t.equal(p.ProcessType, 'Background');
    t.equal(p.LowPriorityIO, true);
    t.equal(p.Umask, 63, 'umask 077');
    t.equal(p.StandardOutPath, join(s.home, 'Library', 'Logs', 'credport', 'credport.out.log'));
    t.equal(p.StandardErrorPath, join(s.home, 'Library', 'Logs', 'credport', 'credport.err.log'));
    t.same(Object.keys(p.EnvironmentVariables as object).sort(), ['HOME', 'PATH'], 'minimal environment');

    const again = await runCliAsync(['service', 'install'], env);
    t.equal(again.status, 0);
    t.match(again.stdout, /up to date[\s\S]*already loaded/);
    t.equal(s.calls().filter((c) => c.startsWith('bootstrap')).length, 1, 're-running install does not reload an unchanged plist');

    // An older plist on disk is upgraded in place: unloaded, rewritten, loaded.
    writeFileSync(plist, readFileSync(plist, 'utf8').replace('<integer>10</integer>', '<integer>30</integer>'));
    const upgrade = await runCliAsync(['service', 'install'], env);
    t.equal(upgrade.status, 0, upgrade.stderr);
    t.match(upgrade.stdout, /updated/);
    t.match(readFileSync(plist, 'utf8'), /<integer>10<\/integer>/);
    t.same(s.calls().slice(-3), [
      `print gui/${uid}/dev.credport.daemon`,
      `bootout gui/${uid}/dev.credport.daemon`,
      `bootstrap gui/${uid} ${plist}`,
    ]);

    // bootstrap error 5 ("already loaded" in launchd's terms): unload and retry once.
    writeFileSync(plist, 'stale');
    writeFileSync(join(s.root, 'state.fail5'), '');
    const retry = await runCliAsync(['service', 'install'], env);
    t.equal(retry.status, 0, retry.stderr);
    t.same(s.calls().slice(-2), [`bootout gui/${uid}/dev.credport.daemon`, `bootstrap gui/${uid} ${plist}`]);

    const status = await runCliAsync(['service', 'status'], env);
    t.match(status.stdout, /loaded:\s+yes/);
    t.match(status.stdout, /running:\s+yes \(pid 4242\)/);
    t.match(status.stdout, /last exit: 0/);
    t.match(status.stdout, /health:\s+not reachable/);
    t.equal(status.status, 1, 'running but not healthy: exit 1');

    t.equal((await runCliAsync(['service', 'restart'], env)).status, 0);
    t.equal(s.calls().at(-1), `kickstart -k gui/${uid}/dev.credport.daemon`);
    t.equal((await runCliAsync(['service', 'stop'], env)).status, 0);
    t.equal(s.calls().at(-1), `kill SIGTERM gui/${uid}/dev.credport.daemon`);

    const un = await runCliAsync(['service', 'uninstall'], env);
    t.equal(un.status, 0);
    t.notOk(existsSync(plist), 'plist removed');
    const notLoaded = await runCliAsync(['service', 'start'], env);
    t.equal(notLoaded.status, 1);
    t.match(notLoaded.stderr, /not loaded; run 'credport service install'/, 'service not found: a clear error');
    t.equal((await runCliAsync(['service', 'install', '--system'], env)).status, 2, '--system is refused on launchd');
  },
);

const SYSTEMCTL = `
args="$*"
case "$args" in
  *show*) if [ -f "$STATE.active" ]; then printf 'LoadState=loaded\\nActiveState=active\\nMainPID=777\\nExecMainStatus=0\\n'; else printf 'LoadState=not-found\\nActiveState=inactive\\nMainPID=0\\n'; fi ;;
  *restart*|*start*) touch "$STATE.active" ;;
  *stop*|*disable*) rm -f "$STATE.active" ;;
esac
exit 0`;

t.test('systemd: user and system units pass systemd-analyze verify; commands go through systemctl', needs(systemdAnalyze), async (t) => {
  if (!assertPresent(t, systemdAnalyze)) return;
  const s = setup('systemctl', SYSTEMCTL);
  const env = { ...s.env, CREDPORT_SERVICE_MANAGER: 'systemd' };
  const unit = join(s.home, '.config', 'systemd', 'user', 'credport.service');
  const install = await runCliAsync(['service', 'install'], env);
  t.equal(install.status, 0, install.stderr);
  t.same(s.calls(), ['--user daemon-reload', '--user enable credport.service', '--user restart credport.service']);
  const text = readFileSync(unit, 'utf8');
  t.notMatch(text, /network-online/, 'no network-online.target in a user unit (a user manager has none)');
  t.match(
    text,
    new RegExp(`^ExecStart="[^"]+" ${FLAGS} "${CLI.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" `, 'm'),
    'the path credport was run by, as given',
  );
  t.match(
    text,
    new RegExp(`^Environment="XDG_CONFIG_HOME=${join(s.home, '.config').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"$`, 'm'),
    "the CLI's XDG_CONFIG_HOME",
  );
  for (const line of [
    'RestartPreventExitStatus=2 3',
    'StartLimitIntervalSec=60',
    'StartLimitBurst=5',
    'Restart=on-failure',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'PrivateTmp=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK',
    'UMask=0077',
    'WantedBy=default.target',
  ]) {
    t.match(text, new RegExp(`^${line}$`, 'm'), line);
  }
  t.match(
    text,
    new RegExp(`^ReadWritePaths="${join(s.home, 'state').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"$`, 'm'),
    'state dir writable, quoted because of the space',
  );
  t.match(
    text,
    new RegExp(`^ExecStart="[^"]+node[^"]*" ${FLAGS} "[^"]+credport\\.cjs" serve --config "[^"]+credport config\\.toml"$`, 'm'),
  );
  const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  t.equal(verify.status, 0, `systemd-analyze verify (user unit): ${verify.stderr}`);
  t.equal(verify.stderr.trim(), '', 'no warnings');

  const again = await runCliAsync(['service', 'install'], env);
  t.match(again.stdout, /up to date/);
  t.equal(s.calls().at(-1), '--user start credport.service', 'an unchanged unit is started, not restarted');
  const status = await runCliAsync(['service', 'status'], env);
  t.match(status.stdout, /running:\s+yes \(pid 777\)/);

  // --system writes to a directory given by the manager; here a temp dir stands in for /etc/systemd/system.
  const { SystemdManager, renderUnit } = await import('../daemon/service/systemd.js');
  const sysDir = join(s.root, 'etc-systemd-system');
  mkdirSync(sysDir);
  const ctx = {
    node: process.execPath,
    entry: join(process.cwd(), 'dist/bundle/credport.cjs'),
    config: '/etc/credport/config.toml',
    home: '/var/lib/credport',
    uid: 0,
    version: 't',
    templatePath: '',
    writablePaths: ['/var/lib/credport'],
  };
  const sys = renderUnit(ctx, true);
  t.match(sys, /^After=network-online\.target$/m, 'a system unit waits for the network');
  t.notMatch(sys, /^Environment=/m, "a system unit takes the account's own environment");
  for (const line of [
    'RestartPreventExitStatus=2 3',
    'StartLimitBurst=5',
    'User=credport',
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'ProtectHome=yes',
    'WantedBy=multi-user.target',
    'StateDirectory=credport',
  ]) {
    t.match(sys, new RegExp(`^${line}$`, 'm'), line);
  }
  const m = new SystemdManager(ctx, true, sysDir);
  t.equal(m.unitPath(), join(sysDir, 'credport.service'));
  writeFileSync(m.unitPath(), sys);
  const sysVerify = spawnSync('systemd-analyze', ['verify', m.unitPath()], { encoding: 'utf8' });
  t.equal(sysVerify.status, 0, `systemd-analyze verify (system unit): ${sysVerify.stderr}`);

  const un = await runCliAsync(['service', 'uninstall'], env);
  t.equal(un.status, 0);
  t.notOk(existsSync(unit));
  t.same(s.calls().slice(-2), ['--user disable --now credport.service', '--user daemon-reload']);
});

t.test('a plist that plistutil cannot parse is caught (the check can fail)', needs(plistutil), async (t) => {
  if (!assertPresent(t, plistutil)) return;
  const dir = mkdtempSync(join(tmpdir(), 'credport-plist-'));
  writeFileSync(join(dir, 'bad.plist'), '<?xml version="1.0"?><plist version="1.0"><dict><key>Label</key></plist>');
  const r = spawnSync('plistutil', ['-i', join(dir, 'bad.plist'), '-o', join(dir, 'out.bin'), '-f', 'bin'], { encoding: 'utf8' });
  t.notOk(existsSync(join(dir, 'out.bin')), 'no output');
  t.match(r.stdout + r.stderr, /ERROR/, 'and an error, which is how the check above tells failure');
});

t.test('a unit that systemd-analyze rejects is caught (the check can fail)', needs(systemdAnalyze), async (t) => {
  if (!assertPresent(t, systemdAnalyze)) return;
  const dir = mkdtempSync(join(tmpdir(), 'credport-unit-'));
  writeFileSync(join(dir, 'bad.service'), '[Service]\nExecStart=/nonexistent/credport serve\n');
  t.not(spawnSync('systemd-analyze', ['verify', join(dir, 'bad.service')]).status, 0);
});

t.test('systemd: $XDG_CONFIG_HOME names where the user unit goes and is passed to the daemon', needs(systemdAnalyze), async (t) => {
  if (!assertPresent(t, systemdAnalyze)) return;
  const s = setup('systemctl', SYSTEMCTL);
  const xdg = join(s.root, 'xdg config');
  const state = join(s.root, 'xdg state');
  const env = { ...s.env, CREDPORT_SERVICE_MANAGER: 'systemd', XDG_CONFIG_HOME: xdg, XDG_STATE_HOME: state };
  const r = await runCliAsync(['service', 'install'], env);
  t.equal(r.status, 0, r.stderr);
  const unit = join(xdg, 'systemd', 'user', 'credport.service');
  t.ok(existsSync(unit), 'unit under $XDG_CONFIG_HOME/systemd/user');
  t.notOk(existsSync(join(s.home, '.config', 'systemd')), 'not under ~/.config');
  const text = readFileSync(unit, 'utf8');
  t.match(text, `\nEnvironment="XDG_CONFIG_HOME=${xdg}"\n`);
  t.match(text, `\nEnvironment="XDG_STATE_HOME=${state}"\n`);
  const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr}`);
  t.equal(verify.stderr.trim(), '', 'no warnings');

  // Run through a bin link, as npm installs it: the unit names the link, not the package directory it
  // resolves to, so a reinstall or a moved clone does not leave the unit pointing at nothing.
  const link = join(s.root, 'npm prefix', 'bin', 'credport');
  mkdirSync(join(s.root, 'npm prefix', 'bin'), { recursive: true });
  symlinkSync(CLI, link);
  const viaLink = spawnSync(process.execPath, [link, 'service', 'install'], { env, encoding: 'utf8' });
  t.equal(viaLink.status, 0, viaLink.stderr);
  t.match(readFileSync(unit, 'utf8'), `\nExecStart="${process.execPath}" ${FLAGS} "${link}" serve --config "${s.config}"\n`);
});

function hold(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

t.test('service install binds the listen address once first: a taken port installs nothing', async (t) => {
  const s = setup('systemctl', SYSTEMCTL);
  const srv = await hold();
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('127.0.0.1:0', `127.0.0.1:${port}`));
  for (const manager of ['systemd', 'launchd']) {
    const r = await runCliAsync(['service', 'install'], { ...s.env, CREDPORT_SERVICE_MANAGER: manager });
    t.equal(r.status, 3, `${manager}: exit 3 (config)`);
    t.match(
      r.stderr,
      new RegExp(`not installed: 127\\.0\\.0\\.1:${port} is already in use.*set \\[daemon\\] listen in`),
      `${manager}: says why and what to do`,
    );
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  t.same(s.calls(), [], 'systemctl never called');
  t.notOk(existsSync(join(s.home, '.config', 'systemd')), 'no unit written');
  t.notOk(existsSync(join(s.home, 'Library')), 'no plist written');
});

const NOBODY = 65534;
const privilegedPortFloor = (): number => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return 1024;
  }
};
const asNobody = {
  name: 'root, and a port floor above 80 (to run the CLI as an unprivileged user who may not bind port 80)',
  present: process.platform === 'linux' && process.getuid?.() === 0 && privilegedPortFloor() > 80,
  why: 'spawning as uid 65534 needs root; with ip_unprivileged_port_start <= 80 everyone may bind port 80',
};

/** A home owned by nobody in a directory nobody can traverse. */
function nobodyHome(): string {
  const root = mkdtempSync(join(tmpdir(), 'credport-nobody-'));
  chmodSync(root, 0o755);
  const home = join(root, 'home');
  mkdirSync(home, { mode: 0o700 });
  chownSync(home, NOBODY, NOBODY);
  return home;
}

function runAs(uid: number, args: string[], env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    uid,
    gid: uid,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test(
  'init as a user who may not bind port 80 writes a port that user can bind; service install refuses port 80',
  needs(asNobody),
  async (t) => {
    if (!assertPresent(t, asNobody)) return;
    const home = nobodyHome();
    const env = { HOME: home, CREDPORT_SERVICE_MANAGER: 'systemd' };
    const init = runAs(NOBODY, ['init'], env);
    t.equal(init.status, 0, init.stderr);
    t.match(init.stdout, /listen:\s+127\.0\.0\.1:9911, because this user may not bind port 80 \(docs\/setup-linux\.md/);
    const config = join(home, '.config', 'credport', 'config.toml');
    t.match(readFileSync(config, 'utf8'), /^listen = "127\.0\.0\.1:9911"$/m);

    writeFileSync(config, readFileSync(config, 'utf8').replace('127.0.0.1:9911', '127.0.0.1:80'));
    const r = runAs(NOBODY, ['service', 'install'], { ...env, PATH: '/nonexistent' });
    t.equal(r.status, 3, r.stderr);
    t.match(r.stderr, /not installed: this user may not listen on 127\.0\.0\.1:80: ports below 1024 need privileges/);
    t.notOk(existsSync(join(home, '.config', 'systemd')), 'no unit written');

    // root may bind 80: its default stays 80, so `curl localhost/health` works.
    const rootHome = mkdtempSync(join(tmpdir(), 'credport-root-'));
    const asRoot = spawnSync(process.execPath, [CLI, 'init'], { env: { PATH: process.env.PATH, HOME: rootHome }, encoding: 'utf8' });
    t.equal(asRoot.status, 0, asRoot.stderr);
    t.match(readFileSync(join(rootHome, '.config', 'credport', 'config.toml'), 'utf8'), /^listen = "127\.0\.0\.1:80"$/m);
  },
);

t.test('init --system: the key, token and lock in a state directory the service account owns', needs(asNobody), async (t) => {
  if (!assertPresent(t, asNobody)) return;
  const root = mkdtempSync(join(tmpdir(), 'credport-system-'));
  chmodSync(root, 0o755);
  const config = join(root, 'etc', 'config.toml');
  const state = join(root, 'var-lib-credport');
  const r = spawnSync(process.execPath, [CLI, 'init', '--system', '--user', 'nobody', '--config', config, '--state-dir', state], {
    env: { PATH: process.env.PATH, HOME: '/root' },
    encoding: 'utf8',
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /owned by nobody/);
  t.match(r.stdout, `credport service install --system --config ${config} --user nobody`);
  const text = readFileSync(config, 'utf8');
  for (const [k, f] of [
    ['path', 'device-key.pem'],
    ['token_file', 'token'],
    ['lock_file', 'daemon.pid'],
    ['audit_file', 'audit.log'],
  ]) {
    t.match(text, `${k} = "${join(state, f!)}"`, `${k} in the state directory`);
  }
  t.match(text, /^listen = "127\.0\.0\.1:80"$/m, 'port 80: the system unit has CAP_NET_BIND_SERVICE');
  const key = statSync(join(state, 'device-key.pem'));
  t.equal(key.uid, NOBODY, 'key owned by the account');
  t.equal(key.mode & 0o777, 0o600);
  const dir = statSync(state);
  t.equal(dir.uid, NOBODY);
  t.equal(dir.mode & 0o777, 0o700);
  // The service account (not root) can open the key the daemon will sign with.
  const show = runAs(NOBODY, ['key', 'show', '--config', config], { HOME: state });
  t.equal(show.status, 0, show.stderr);
  t.match(show.stdout, /thumbprint|kid/i);

  // A second run keeps the key, which root opens as the account (the file is not root's).
  const again = spawnSync(process.execPath, [CLI, 'init', '--system', '--user', 'nobody', '--config', config], {
    env: { PATH: process.env.PATH, HOME: '/root' },
    encoding: 'utf8',
  });
  t.equal(again.status, 0, again.stderr);
  t.match(again.stdout, /config:.*\(kept\)[\s\S]*key:.*\(kept, file backend, owned by nobody\)/);

  t.equal(
    spawnSync(process.execPath, [CLI, 'init', '--user', 'nobody'], { encoding: 'utf8' }).status,
    2,
    '--user without --system is a usage error',
  );
});
