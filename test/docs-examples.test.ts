/**
 * Every example in README.md and docs/*.md runs here, so a document cannot drift from the code:
 *  - each ```toml block is loaded by the real config loader (parseConfigText + resolveConfig), merged onto
 *    the blocks before it on the same page (pages build a config step by step; a block with a [key]
 *    starts again, as it shows another backend) and onto a minimal base
 *    for the tables a fragment leaves out; a [key] with backend = "pkcs11" is also resolved the way
 *    opening it would (which token, which key), without loading a module;
 *  - each `credport ...` command in a ```sh block either runs offline, in order, in a fresh HOME and
 *    must exit 0, or is listed below with the reason it cannot run here (a daemon, a service manager, a
 *    cloud). A command that is neither fails the test: a new example must be classified.
 * A block can opt out with `<!-- example: not-a-config REASON -->` on the line before it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ConfigError, parseConfigText, resolveConfig } from '../daemon/config/load.js';
import { describePkcs11Target } from '../daemon/keys/pkcs11/signer.js';
import { CLI, withoutSdkNodeNotice } from './helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

interface Block {
  page: string;
  line: number;
  lang: string;
  text: string;
  optOut?: string;
}

function blocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ''); i++) body.push(lines[i] ?? '');
    const marker = /^<!--\s*example:\s*(not-a-config|skip)\s+(.+?)\s*-->$/.exec((lines[start - 1] ?? '').trim());
    out.push({ page, line: start + 1, lang: open[1] ?? '', text: body.join('\n'), ...(marker ? { optOut: marker[2] } : {}) });
  }
  return out;
}

const ALL = PAGES.flatMap(blocks);

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(a: Table, b: Table): Table {
  const out: Table = { ...a };
  // A [key] table is one backend: a later one replaces it rather than mixing two backends' keys.
  for (const [k, v] of Object.entries(b)) out[k] = k !== 'key' && isTable(v) && isTable(out[k]) ? merge(out[k] as Table, v) : v;
  return out;
}

/** What a fragment leaves out: an issuer and one profile, as `credport init` writes them. */
const BASE: Table = {
  oidc: { issuer: 'https://d111111abcdef8.cloudfront.net' },
  profiles: { default: { type: 'aws-oidc', role_arn: 'arn:aws:iam::111122223333:role/dev' } },
};

t.test('there are examples to check (the extraction itself works)', async (t) => {
  t.ok(ALL.filter((b) => b.lang === 'toml').length >= 8, 'toml blocks found');
  t.ok(
    ALL.some((b) => b.page === 'README.md' && b.lang === 'toml'),
    'the README has a config example',
  );
  t.ok(
    ALL.filter((b) => b.optOut).every((b) => b.optOut!.length >= 10),
    'every opt-out gives a reason',
  );
});

t.test('every TOML example is a config the loader accepts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credport-docs-'));
  const env = { HOME: dir, PATH: process.env.PATH };
  const file = join(dir, 'config.toml');
  for (const page of PAGES) {
    let acc: Table = {};
    for (const b of ALL.filter((x) => x.page === page && x.lang === 'toml')) {
      const where = `${b.page}:${b.line}`;
      if (b.optOut) {
        t.comment(`${where}: skipped (${b.optOut})`);
        continue;
      }
      let data: Table;
      try {
        data = parseConfigText(where, b.text) as Table;
      } catch (err) {
        t.fail(`${where} is not TOML: ${(err as Error).message}`);
        continue;
      }
      // A [key] block shows one backend: the page's config starts again from it.
      acc = isTable(data.key) ? data : merge(acc, data);
      try {
        const cfg = resolveConfig(file, merge(BASE, acc), env);
        t.pass(`${where} loads`);
        if (cfg.key.backend === 'pkcs11') {
          const target = describePkcs11Target(cfg.key, env);
          t.ok(
            target.keyLabel !== undefined || target.keyId !== undefined,
            `${where}: the pkcs11 key is named (${JSON.stringify(target)})`,
          );
        }
      } catch (err) {
        t.fail(`${where} is refused: ${err instanceof ConfigError ? err.problems.join('; ') : (err as Error).message}`);
      }
    }
  }
});

t.test('a pkcs11 [key] without key_label or key_id selects the key labelled "device", as the reference says', async (t) => {
  const target = describePkcs11Target(
    { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'credport', pin: { env: 'CREDPORT_PIN' } },
    {},
  );
  t.same(target, { tokenLabel: 'credport', keyLabel: 'device' });
  const byId = describePkcs11Target({ module: '/m.so', tokenLabel: 'credport', keyId: '0A', pin: { env: 'P' } }, {});
  t.same(byId, { tokenLabel: 'credport', keyId: '0a' }, 'an id alone selects by id, with no label added');
});

/** Commands the pages show that cannot run in a test, and why. Matched against the start of the command. */
const CANNOT_RUN: [RegExp, string][] = [
  [
    /^credport init\b.*--system\b/,
    'writes /etc/credport, /var/lib/credport and creates an account (test/service.test.ts runs it in a temp dir)',
  ],
  [/^credport serve\b/, 'runs until stopped (the daemon tests run it)'],
  [/^credport (status|reload|auth)\b/, 'asks a running daemon that holds cloud credentials'],
  [/^credport service\b/, 'drives launchd or systemd (test/service.test.ts runs it against stand-ins)'],
  [/^credport env --profile gcp\b/, 'needs the [profiles.gcp] the page has the reader add to the config'],
  [/^credport (oidc (publish|revoke)|key rotate)\b/, 'writes the live issuer in S3 (test/oidc-publish.test.ts runs it against moto)'],
  [/^credport ca (revoke|crl)\b/, "needs the reader's CA and a certificate it issued (test/rolesanywhere-renewal.test.ts runs both)"],
  [/^credport setup aws\b/, 'deploys CloudFormation stacks in an AWS account (test/setup-aws-deploy.test.ts runs it against moto)'],
];
/** Commands safe offline: they touch only files under HOME and the working directory. */
const RUNS = [
  /^credport init(?!.*--system)\b/,
  /^credport oidc export\b/,
  /^credport env$/,
  /^credport key show$/,
  /^credport (ca init|ca issue|cert csr)\b/,
  /^credport [a-z ]*--help$/,
];

function commands(text: string): string[] {
  const joined = text.replace(/\s*\\\n\s*/g, ' ');
  const out: string[] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.replace(/\s+#\s.*$/, '').trim();
    if (line.startsWith('#')) continue;
    // Direct, inside $( ), or after sudo: the credport words up to a shell operator or the closing ).
    for (const m of line.matchAll(/(?:^|\$\(|sudo\s+|&&\s*|;\s*)(credport\s[^|&;)]*)/g)) out.push((m[1] ?? '').trim());
  }
  return out;
}

t.test('the credport commands in README and docs run offline, in order, in a fresh HOME', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'credport-docs-sh-'));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'credport'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(bin, 'credport'), 0o755);
  let ran = 0;
  for (const page of PAGES) {
    const home = join(root, page.replace(/\W/g, '_'));
    mkdirSync(home);
    const env = { HOME: home, PATH: `${bin}:${process.env.PATH ?? ''}`, NO_COLOR: '1' };
    const shell = ALL.filter((x) => x.page === page && /^(sh|bash|shell)$/.test(x.lang) && !x.optOut);
    const cmds = shell.flatMap((b) => commands(b.text).map((cmd) => ({ b, cmd })));
    // A page without its own `credport init` assumes the reader ran it (the README's first step).
    if (cmds.length > 0 && !cmds.some(({ cmd }) => /^credport init\b/.test(cmd))) {
      const init = spawnSync(join(bin, 'credport'), ['init'], { cwd: home, env, encoding: 'utf8' });
      t.equal(init.status, 0, `${page}: credport init before its commands: ${init.stderr}`);
    }
    for (const { b, cmd } of cmds) {
      {
        const where = `${b.page}:${b.line}: ${cmd}`;
        const reason =
          CANNOT_RUN.find(([re]) => re.test(cmd))?.[1] ?? (/--system\b|\/etc\/|\/var\/lib\//.test(cmd) ? 'names a system path' : undefined);
        if (reason) {
          t.comment(`${where}: not run (${reason})`);
          continue;
        }
        if (!RUNS.some((re) => re.test(cmd))) {
          t.fail(`${where}: not classified; add it to RUNS (safe offline) or CANNOT_RUN (with a reason)`);
          continue;
        }
        const r = spawnSync('/bin/sh', ['-c', cmd], { cwd: home, env, encoding: 'utf8', timeout: 60_000 });
        t.equal(r.status, 0, `${where}: ${withoutSdkNodeNotice(r.stderr).trim()}`);
        ran++;
      }
    }
  }
  t.ok(ran >= 8, `${ran} commands ran`);
  // The README's own sequence, checked for what it promises: init then env points SDKs at the daemon.
  const readmeHome = join(root, 'README_md');
  const env = spawnSync(join(bin, 'credport'), ['env'], { env: { HOME: readmeHome, PATH: process.env.PATH }, encoding: 'utf8' });
  t.match(
    env.stdout,
    /AWS_CONTAINER_CREDENTIALS_FULL_URI='?http:\/\/127\.0\.0\.1(:\d+)?\/v1\/credentials/,
    "credport env after the README's init",
  );
});

t.test('the command extraction can fail: an unclassified command is caught', async (t) => {
  t.same(commands('eval "$(credport env)"   # point SDKs\nsudo credport service install --system \\\n  --config /x\ncredport frobnicate'), [
    'credport env',
    'credport service install --system --config /x',
    'credport frobnicate',
  ]);
  t.notOk(RUNS.some((re) => re.test('credport frobnicate')) || CANNOT_RUN.some(([re]) => re.test('credport frobnicate')));
  t.ok(
    CANNOT_RUN.some(([re]) => re.test('credport init --system --issuer https://x')),
    'init --system is never run: it writes /etc',
  );
  t.notOk(
    RUNS.some((re) => re.test('credport init --system')),
    'and is not in RUNS',
  );
});
