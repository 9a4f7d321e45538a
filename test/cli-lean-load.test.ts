/**
 * What the everyday commands load: `credport auth` runs once per AWS CLI call (credential_process), so
 * with a daemon running it, `env` and `status` must load neither a schema compiler nor the schema
 * library (the validators are compiled at build time) nor any AWS SDK. helpers/trace-loads lists what
 * the child loaded.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { VALIDATORS_PATH, renderValidators } from '../scripts/gen-validators.js';
import { freePort, MODULE_TREE_CLI } from './helpers/cli.js';
import { readLoaded } from './helpers/trace-loads.js';
import { startStack } from './helpers/stack.js';

const FORBIDDEN = [
  { what: 'the schema library', re: /node_modules\/@sinclair\/typebox\// },
  // Nothing of ajv: the generated code's two helpers are in config/validator-runtime.ts.
  { what: 'the schema compiler', re: /node_modules\/ajv\// },
  { what: "ajv's URI parser", re: /node_modules\/fast-uri\// },
  { what: 'an AWS SDK', re: /node_modules\/@aws-sdk\// },
  // The native addon's loader serves the listener check (peer/native-owner.ts); no key is opened.
  { what: 'key backend', re: /\/daemon\/keys\/(?!native\/)/ },
];

const TRACE = fileURLToPath(new URL('./helpers/trace-loads.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'credport-lean-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
function runListed(args: string[], log: string): Promise<{ status: number | null; stdout: string; stderr: string; loaded: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TRACE, MODULE_TREE_CLI, ...args], {
      env: { PATH: process.env.PATH, HOME: dir, LOADED_LOG: log },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, loaded: readLoaded(log) });
    });
  });
}

const stack = await startStack({ daemon: { listen: `127.0.0.1:${await freePort()}` } });
t.teardown(() => stack.close());

const COMMANDS: Array<{ args: string[]; answered: RegExp }> = [
  { args: ['auth', '--format', 'credential_process'], answered: /"AccessKeyId":"ASIA/ },
  { args: ['env'], answered: /AWS_CONTAINER_CREDENTIALS_FULL_URI/ },
  { args: ['status'], answered: /default\*?\s+ok/ },
];

for (const [i, c] of COMMANDS.entries()) {
  t.test(`credport ${c.args.join(' ')} with the daemon running loads only what it uses`, async (t) => {
    const r = await runListed([...c.args, '--config', stack.configFile], join(dir, `loaded-${i}.txt`));
    t.equal(r.status, 0);
    t.match(r.stdout, c.answered, 'the daemon answered');
    t.ok(
      r.loaded.some((u) => u.includes('/daemon/config/validators.generated.js')),
      'the hook saw the config being validated',
    );
    for (const f of FORBIDDEN)
      t.same(
        r.loaded.filter((u) => f.re.test(u)),
        [],
        `no ${f.what}`,
      );
  });
}

t.test('a config error still names the key and the expectation (the generated validators)', async (t) => {
  const bad = join(dir, 'bad.toml');
  const text = readFileSync(stack.configFile, 'utf8');
  t.match(text, /^\[daemon\]$/m);
  writeFileSync(bad, text.replace(/^\[daemon\]$/m, '[daemon]\nlog_files = "many"'), { mode: 0o600 });
  const r = await runListed(['status', '--config', bad], join(dir, 'loaded-bad.txt'));
  t.equal(r.status, 3);
  t.match(r.stderr, /daemon\.log_files: expected a value of type integer, got "many"/);
  for (const f of FORBIDDEN.slice(0, 2))
    t.same(
      r.loaded.filter((u) => f.re.test(u)),
      [],
      `no ${f.what}`,
    );
});

t.test('the committed validators are what the schema generates', async (t) => {
  t.equal(
    readFileSync(VALIDATORS_PATH, 'utf8'),
    renderValidators(),
    'run `npm run build && npm run gen-docs` and commit daemon/config/validators.generated.ts',
  );
});
