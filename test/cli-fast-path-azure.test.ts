/**
 * The CLI's slim path for an Azure profile (cli-fast-path.test.ts covers AWS, Google Cloud and status):
 * with `credport serve` running, `auth` and `env` load Azure's CLI half alone, no config parser and no
 * other cloud, and print what the full path prints for the same daemon.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startAzureStack } from './helpers/azure-stack.js';
import { full, notSlim, slim, tracer } from './helpers/slim-path.js';

const s = await startAzureStack();
t.teardown(() => s.close());
const { traced } = tracer(t);
// Another path to the same bytes: the daemon did not load this path, so the CLI takes its full path.
const linked = join(s.dir, 'linked.toml');
symlinkSync(s.configFile, linked);

const COMMANDS: Array<{ args: string[]; answered: RegExp }> = [
  { args: ['auth', '--profile', 'azure', '--format', 'token'], answered: /^[\w.-]{20,}\n$/ },
  { args: ['auth', '--profile', 'azure', '--format', 'json'], answered: /"access_token": "[\w.-]{20,}"/ },
  { args: ['env', '--profile', 'azure'], answered: /^export IDENTITY_ENDPOINT='http:\/\/127\.0\.0\.1:\d+\/azure\/identity\/azure'$/m },
];

t.test('auth and env for an Azure profile: the slim path, the same answer as the full path', async (t) => {
  for (const c of COMMANDS) {
    const what = c.args.join(' ');
    const r = traced([...c.args, '--config', s.configFile], s.env);
    t.equal(r.status, 0, `${what}: ${r.stderr}`);
    t.match(r.stdout, c.answered, `${what}: answered`);
    t.ok(slim(r), `${what}: the slim path ran`);
    t.ok(
      r.loaded.some((u) => u.endsWith('/daemon/clouds/azure/cli.js')),
      `${what}: Azure's CLI half was loaded (so the checks below could see a wrong one)`,
    );
    for (const f of notSlim('azure'))
      t.same(
        r.loaded.filter((u) => f.re.test(u)),
        [],
        `${what}: no ${f.what}`,
      );
    const f = traced([...c.args, '--config', linked], s.env);
    t.ok(full(f), `${what}: the full path ran for the linked config`);
    t.equal(f.status, r.status);
    t.equal(f.stdout, r.stdout, `${what}: the same output both ways`);
    t.equal(f.stderr, r.stderr);
  }
  const token = traced(['auth', '--profile', 'azure', '--format', 'token', '--config', s.configFile], s.env).stdout.trim();
  t.match(s.entra.verifyAccessToken(token), { expired: false }, "the emulator's Entra verifies the token the slim path printed");
});
