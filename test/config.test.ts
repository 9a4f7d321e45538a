/** Config: precedence of locations, defaults, and errors that name the file, the key and what was expected. */
import type { AwsOidcProfileConfig, AwsRolesAnywhereProfileConfig } from '../daemon/clouds/aws/schema.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, ConfigNotFoundError, loadConfig } from '../daemon/config/load.js';
import { parseListen } from '../daemon/config/listen.js';
import { configPath, expandPath } from '../daemon/config/paths.js';
import { resolveUid } from '../daemon/config/users.js';

const dir = mkdtempSync(join(tmpdir(), 'credport-config-'));
const env = { HOME: '/home/u', XDG_STATE_HOME: undefined, XDG_CONFIG_HOME: undefined };

const VALID = `
[oidc]
issuer = "https://d111111abcdef8.cloudfront.net"

[profiles.default]
type = "aws-oidc"
role_arn = "arn:aws:iam::111122223333:role/dev"
`;

function write(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

function problems(text: string): string[] {
  const f = write('c.toml', text);
  try {
    loadConfig(f, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      t.equal(err.file, f);
      t.ok(err.message.startsWith(f), 'message names the file');
      return err.problems;
    }
    throw err;
  }
  return [];
}

t.test('location: --config, then CREDPORT_CONFIG, then XDG_CONFIG_HOME, then ~/.config', async (t) => {
  t.equal(configPath('/x/flag.toml', { CREDPORT_CONFIG: '/x/env.toml' }), '/x/flag.toml');
  t.equal(configPath(undefined, { CREDPORT_CONFIG: '/x/env.toml', XDG_CONFIG_HOME: '/xdg' }), '/x/env.toml');
  t.equal(configPath(undefined, { XDG_CONFIG_HOME: '/xdg', HOME: '/h' }), '/xdg/credport/config.toml');
  t.equal(configPath(undefined, { HOME: '/h' }), '/h/.config/credport/config.toml');
  t.equal(
    configPath(undefined, { HOME: '/h', XDG_CONFIG_HOME: 'relative' }),
    '/h/.config/credport/config.toml',
    'relative XDG ignored, per spec',
  );
});

t.test('paths expand ~ and XDG variables, relative to the config dir', async (t) => {
  t.equal(expandPath('~/k.pem', env, '/etc/credport'), '/home/u/k.pem');
  t.equal(expandPath('$XDG_STATE_HOME/credport/token', env, '/etc'), '/home/u/.local/state/credport/token');
  t.equal(expandPath('${XDG_STATE_HOME}/t', { ...env, XDG_STATE_HOME: '/s' }, '/etc'), '/s/t');
  t.equal(expandPath('key.pem', env, '/etc/credport'), '/etc/credport/key.pem');
});

t.test('a minimal config gets documented defaults', async (t) => {
  const cfg = loadConfig(write('min.toml', VALID), env);
  t.same(cfg.daemon.listen, { host: '127.0.0.1', port: 80 });
  t.equal(cfg.daemon.tokenFile, '/home/u/.local/state/credport/token');
  t.same(cfg.key, { backend: 'file', path: '/home/u/.local/state/credport/device-key.pem' });
  t.equal(cfg.oidc?.audience, 'sts.amazonaws.com');
  t.equal(cfg.oidc?.token_lifetime_seconds, 300);
  t.equal(cfg.refresh.fraction, 0.5);
  const p = cfg.profiles.get('default') as AwsOidcProfileConfig | undefined;
  t.equal(p?.type === 'aws-oidc' ? p.region : undefined, 'us-east-1');
  t.equal(p?.duration_seconds, 3600);
  t.equal(cfg.defaultProfile, 'default');
});

t.test('missing file says how to create one', async (t) => {
  t.throws(() => loadConfig(join(dir, 'nope.toml'), env), ConfigNotFoundError);
  t.throws(() => loadConfig(join(dir, 'nope.toml'), env), /credport init/);
});

t.test('errors name the key and what was expected', async (t) => {
  t.same(problems(`${VALID}\n[daemon]\nlisten = 80\n`), [
    'daemon.listen: expected HOST:PORT with a loopback host, e.g. "127.0.0.1:80", "[::1]:8080" or "localhost:80", got number 80',
  ]);
  t.same(
    problems(`${VALID}\n[daemon]\nlisen = "127.0.0.1:80"\n`),
    ['daemon.lisen: unknown key (did you mean listen?)'],
    'a near miss is named',
  );
  t.same(problems(`${VALID}duration_seconds = 60\n`), ['profiles.default.duration_seconds: expected a number >= 900, got number 60']);
  t.same(problems(`${VALID}duration_seconds = 50000\n`), [
    'profiles.default.duration_seconds: expected a number <= 43200, got number 50000',
  ]);
  t.match(
    problems(VALID.replace('arn:aws:iam::111122223333:role/dev', 'arn:aws:iam::1:role/dev'))[0],
    /^profiles\.default\.role_arn: expected an IAM role ARN/,
  );
  t.match(
    problems(VALID.replace('type = "aws-oidc"', 'type = "gcp"'))[0],
    /^profiles\.default\.type: expected one of "aws-oidc", "aws-rolesanywhere", "aws-assume-role", "gcp-wif", "azure-federated", got "gcp"/,
  );
  t.match(problems(`${VALID}role_session_name = "has/slash"\n`)[0], /^profiles\.default\.role_session_name: expected 2-64 characters/);
  t.same(problems(`${VALID}\n[key]\nbackend = "tpm"\n`), ['key.backend: expected one of "file", "pkcs11", "secure-enclave", got "tpm"']);
  t.same(problems(`${VALID}\n[daemon]\nlog_level = "loud"\n`), [
    'daemon.log_level: expected one of fatal, error, warn, info, debug, trace, got "loud"',
  ]);
  t.same(problems(VALID.replace('[profiles.default]', '[profiles."bad name"]')), [
    'profiles."bad name": invalid profile name; use letters, digits and _ . - (up to 64, starting with a letter or digit)',
  ]);
  t.same(problems('[oidc]\nissuer = "https://x.example"\n'), ['profiles: missing (required)']);
});

t.test('several problems are reported together', async (t) => {
  const p = problems(`${VALID}duration_seconds = "1h"\nfoo = 1\n`);
  t.equal(p.length, 2);
  t.ok(p.includes('profiles.default.foo: unknown key'));
  t.ok(p.some((x) => x.startsWith('profiles.default.duration_seconds: expected a value of type integer')));
});

t.test('checks beyond the schema', async (t) => {
  t.match(problems(`${VALID}\n[daemon]\nlisten = "0.0.0.0:80"\n`)[0], /^daemon\.listen: .*not a loopback address/);
  t.match(problems(`${VALID}\n[daemon]\nlisten = "192.168.1.5:80"\n`)[0], /not a loopback address/);
  t.match(problems(`${VALID}\n[daemon]\nlisten = "example.com:80"\n`)[0], /not an IP address or localhost/);
  t.match(
    problems(VALID.replace('https://d111111abcdef8.cloudfront.net', 'http://issuer.example.com'))[0],
    /^oidc\.issuer: must use https/,
  );
  t.same(
    problems(VALID.replace('https://d111111abcdef8.cloudfront.net', 'http://127.0.0.1:9000/oidc')),
    [],
    'http allowed for a loopback issuer',
  );
  t.match(problems(VALID.replace('d111111abcdef8.cloudfront.net', 'x.example/?a=1'))[0], /query or fragment/);
  t.match(problems(VALID.replace('[oidc]\nissuer = "https://d111111abcdef8.cloudfront.net"\n', ''))[0], /^oidc: missing/);
  t.match(problems(`${VALID}sts_endpoint = "not a url"\n`)[0], /^profiles\.default\.sts_endpoint: expected a URL/);
  const two = `${VALID}\n[profiles.b]\ntype = "aws-oidc"\nrole_arn = "arn:aws:iam::111122223333:role/b"\n`;
  t.same(problems(two), [], 'profile named default wins');
  t.match(problems(two.replace('[profiles.default]', '[profiles.a]'))[0], /name one profile "default" or set default = true/);
  t.match(problems(`${two.replace('[profiles.default]', '[profiles.a]')}default = true\n`), [], 'default = true picks one');
  t.match(problems(`${VALID}default = true\n${two.slice(VALID.length)}default = true\n`)[0], /more than one profile has default = true/);
});

t.test('key backends: each checked against its own keys', async (t) => {
  const pk = `${VALID}\n[key]\nbackend = "pkcs11"\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\ntoken_label = "credport"\nkey_label = "device"\npin_file = "~/pin"\n`;
  const cfg = loadConfig(write('pk.toml', pk), env);
  t.same(cfg.key, {
    backend: 'pkcs11',
    module: '/usr/lib/softhsm/libsofthsm2.so',
    tokenLabel: 'credport',
    keyLabel: 'device',
    pin: { file: '/home/u/pin' },
  });
  t.same(problems(`${pk}path = "/x"\n`), ['key.path: unknown key'], 'a file-backend key in a pkcs11 table is named as unknown');
  t.same(problems(pk.replace('pin_file = "~/pin"', 'pin_file = "~/pin"\npin_env = "PIN"')), [
    'key: give exactly one of pin_file and pin_env (PINs are never read from the command line)',
  ]);
  t.same(problems(pk.replace('pin_file = "~/pin"\n', '')), [
    'key: give exactly one of pin_file and pin_env (PINs are never read from the command line)',
  ]);
  t.same(problems(pk.replace('token_label = "credport"\n', '')), ['key: give token_label or uri to say which token holds the key']);
  t.same(problems(pk.replace('token_label = "credport"', 'uri = "pkcs11:token=credport;object=device?pin-value=1234"')), [
    'key.uri: must not contain a PIN (pin-value / pin-source); use pin_file or pin_env',
  ]);
  t.same(problems(pk.replace('module = "/usr/lib/softhsm/libsofthsm2.so"\n', '')), ['key.module: missing (required)']);
  t.match(problems(`${pk}key_id = "xyz"\n`)[0], /^key\.key_id: expected hex bytes/);
  const se = loadConfig(write('se.toml', `${VALID}\n[key]\nbackend = "secure-enclave"\nuser_presence = true\n`), env);
  t.equal(se.key.backend, 'secure-enclave');
  if (se.key.backend === 'secure-enclave') {
    t.equal(se.key.userPresence, true);
    t.match(se.key.path, /\/credport\/secure-enclave-key\.json$/, 'the key file defaults to the state directory');
    t.notMatch(se.key.path, /\$/, 'expanded');
  }
  t.same(problems(`${VALID}\n[key]\nbackend = "secure-enclave"\ntag = "dev.credport.device"\n`).length, 1);
  t.match(
    problems(`${VALID}\n[key]\nbackend = "secure-enclave"\ntag = "dev.credport.device"\n`)[0],
    /^key\.tag: Secure Enclave keys are no longer kept in the keychain.*credport init/,
    'a config from the keychain days gets a migration error, not "unknown key"',
  );
  t.same(problems(`${VALID}\n[key]\nbackend = "secure-enclave"\nuser_presence = "yes"\n`), [
    'key.user_presence: expected a value of type boolean, got "yes"',
  ]);
});

t.test('profile types: rolesanywhere and assume-role, each checked against its own keys', async (t) => {
  const TA = 'arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555';
  const PR = 'arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000';
  const ra = `${VALID}\n[profiles.edge]\ntype = "aws-rolesanywhere"\ncertificate = "~/device.pem"\ntrust_anchor_arn = "${TA}"\nprofile_arn = "${PR}"\nrole_arn = "arn:aws:iam::111122223333:role/edge"\n`;
  const cfg = loadConfig(write('ra.toml', ra), env);
  const edge = cfg.profiles.get('edge') as AwsRolesAnywhereProfileConfig | undefined;
  t.equal(edge?.type, 'aws-rolesanywhere');
  t.equal(edge?.type === 'aws-rolesanywhere' ? edge.certificate : '', '/home/u/device.pem', 'paths expanded');
  t.same(
    problems(`${ra}region = "eu-west-1"\n`),
    ['profiles.edge.region: unknown key'],
    'an aws-oidc key in a rolesanywhere table is unknown',
  );
  t.match(
    problems(ra.replace(PR, PR.replace('eu-west-1', 'us-east-1')))[0],
    /^profiles\.edge\.profile_arn: its region \(us-east-1\) differs from the trust anchor's \(eu-west-1\)/,
  );
  t.match(
    problems(ra.replace(TA, 'arn:aws:rolesanywhere:eu-west-1:1:trust-anchor/x'))[0],
    /^profiles\.edge\.trust_anchor_arn: expected a Roles Anywhere trust anchor ARN/,
  );
  t.same(problems(`${ra}private_key_passphrase_env = "PASS"\n`), [
    'profiles.edge: a passphrase is set but private_key is not (the device key has no passphrase)',
  ]);
  t.same(problems(ra.replace('certificate = "~/device.pem"\n', '')), ['profiles.edge.certificate: missing (required)']);
  const chain = `${ra}\n[profiles.cross]\ntype = "aws-assume-role"\nsource_profile = "edge"\nrole_arn = "arn:aws:iam::444455556666:role/x"\n`;
  t.same(problems(chain), [], 'assume-role onto a rolesanywhere profile');
  t.same(problems(chain.replace('source_profile = "edge"', 'source_profile = "nope"')), [
    'profiles.cross.source_profile: no profile named nope',
  ]);
  t.match(
    problems(`${chain}duration_seconds = 7200\n`)[0],
    /^profiles\.cross\.duration_seconds: expected a number <= 3600/,
    'chained sessions are capped at one hour',
  );
  const cycle = `${VALID}\n[profiles.a]\ntype = "aws-assume-role"\nsource_profile = "b"\nrole_arn = "arn:aws:iam::111122223333:role/a"\n[profiles.b]\ntype = "aws-assume-role"\nsource_profile = "a"\nrole_arn = "arn:aws:iam::111122223333:role/b"\n`;
  t.match(problems(cycle).join('\n'), /profiles\.a\.source_profile: the chain a -> b -> a is a cycle/);
  t.same(problems(`${VALID}\n[profiles.x]\ntype = "gcp"\n`), [
    'profiles.x.type: expected one of "aws-oidc", "aws-rolesanywhere", "aws-assume-role", "gcp-wif", "azure-federated", got "gcp"',
  ]);
});

t.test('TOML syntax errors give line and column', async (t) => {
  const p = problems('[daemon\nlisten = 1');
  t.match(p[0], /^line 1, column \d+:/);
});

t.test('listen parsing', async (t) => {
  t.same(parseListen('[::1]:8080'), { host: '::1', port: 8080 });
  t.same(parseListen('localhost:80'), { host: 'localhost', port: 80 });
  t.same(parseListen('127.0.0.2:0'), { host: '127.0.0.2', port: 0 });
  t.throws(() => parseListen('127.0.0.1'), /HOST:PORT/);
  t.throws(() => parseListen('127.0.0.1:70000'), /out of range/);
  t.throws(() => parseListen('[::]:80'), /not a loopback/);
});

t.test('user names in allow_uids and monitor_uids become uids; an unknown name is an error', async (t) => {
  const f = write('users.toml', `[daemon]\nallow_uids = ["root", 1234]\nmonitor_uids = ["root"]\n${VALID}`);
  const cfg = loadConfig(f, env);
  t.same(cfg.daemon.allowUids, [0, 1234], 'a name from /etc/passwd, a number as it is');
  t.same(cfg.daemon.monitorUids, [0]);
  t.same(problems(`[daemon]\nallow_uids = ["credport-no-such-user"]\n${VALID}`), [
    'daemon.allow_uids: no user named "credport-no-such-user" on this machine',
  ]);
});

t.test("a name /etc/passwd lacks is asked of the system's user database (id -u)", async (t) => {
  const passwd = write('passwd', 'someone:x:4321:4321::/home/someone:/bin/sh\n');
  t.equal(resolveUid('someone', passwd), 4321, 'from the passwd file, no process spawned');
  // root is not in this file: a directory service (NSS) user would be found the same way.
  t.equal(resolveUid('root', passwd), 0, 'from id -u');
  t.equal(resolveUid('credport-no-such-user', passwd), undefined);
  t.equal(resolveUid('root', join(dir, 'no-such-passwd')), 0, 'no passwd file at all (macOS): id -u');
});
