/**
 * A profile type's provider module is loaded when a config uses that type, at start or at a reload: a
 * daemon with only OIDC profiles does without the X.509 stack Roles Anywhere brings (and without
 * the AWS SDK, fastify's schema compilers and node's fetch, which it never uses), and a SIGHUP that adds the first
 * Roles Anywhere profile to such a daemon still serves it, without a restart. What a process loaded is
 * read from the process itself (helpers/trace-loads), never inferred from time.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { parse, stringify } from 'smol-toml';
import { initCa, issueCertificate } from '../daemon/x509/ca.js';
import { createCsr } from '../daemon/x509/csr.js';
import { fromKeyFile } from '../daemon/x509/signing-key.js';
import { MODULE_TREE_CLI, waitFor } from './helpers/cli.js';
import { spawnDaemon, type DaemonProcess } from './helpers/hostile-daemon.js';
import { exchange } from './helpers/hostile-http.js';
import { readLoaded } from './helpers/trace-loads.js';
import { ACCOUNT, roleArnFor } from './helpers/stack.js';

const TRACE = pathToFileURL(join(import.meta.dirname, 'helpers', 'trace-loads.js')).href;
const X509_STACK = /node_modules\/(@peculiar\/x509|pkijs|reflect-metadata|tsyringe)\//;
// fast-json-stringify's small serializer runtime is fastify's error serializer; its compiler (index.js) is not.
const SCHEMA_COMPILERS =
  /node_modules\/(@fastify\/ajv-compiler|@fastify\/fast-json-stringify-compiler|ajv)\/|node_modules\/fast-json-stringify\/index\.js/;

/** The environment that makes a credport process record what it loaded, and the reader of that record. */
function recorder(t: Test): { env: NodeJS.ProcessEnv; read(): string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'credport-loaded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'loaded.txt');
  return {
    env: { NODE_OPTIONS: `--import=${TRACE}`, LOADED_LOG: out },
    read: () => readLoaded(out),
  };
}

async function get(d: DaemonProcess, path: string) {
  const r = await exchange(
    d.port,
    `GET ${path} HTTP/1.1\r\nHost: ${d.goodHost}\r\nAuthorization: ${d.token}\r\nConnection: close\r\n\r\n`,
    { maxMs: 5000 },
  );
  return r.responses[0];
}

t.test('an OIDC-only daemon serves without the X.509 stack, the AWS SDK, schema compilers or fetch', async (t) => {
  const rec = recorder(t);
  const d = await spawnDaemon({ logLevel: 'warn', env: rec.env, entry: MODULE_TREE_CLI });
  t.teardown(() => d.stop());
  t.equal((await get(d, '/v1/credentials'))?.status, 200, 'credentials fetched upstream and served');
  t.equal(await d.stop(), 0, 'a clean exit, which writes the record');
  const loaded = rec.read();
  t.ok(
    loaded.some((f) => f.includes('node_modules/fastify/')),
    'the record sees the packages the daemon does load',
  );
  t.same(
    loaded.filter((f) => X509_STACK.test(f)),
    [],
    'no X.509 stack',
  );
  t.same(
    loaded.filter((f) => SCHEMA_COMPILERS.test(f)),
    [],
    'no fastify schema compiler',
  );
  t.same(
    loaded.filter((m) => /undici/.test(m)),
    [],
    'no fetch implementation',
  );
  t.same(
    loaded.filter((f) => /node_modules\/(@aws-sdk|@smithy)\//.test(f)),
    [],
    'no AWS SDK: credport speaks STS itself',
  );
});

const REGION = 'eu-west-1';
const TA = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:trust-anchor/11111111-2222-3333-4444-555555555555`;
const PROFILE = `arn:aws:rolesanywhere:${REGION}:${ACCOUNT}:profile/66666666-7777-8888-9999-000000000000`;
const EDGE_ROLE = roleArnFor('edge');

t.test('a reload that adds the first Roles Anywhere profile serves it without a restart', async (t) => {
  const rec = recorder(t);
  const d = await spawnDaemon({ logLevel: 'warn', env: rec.env, entry: MODULE_TREE_CLI });
  t.teardown(() => d.stop());
  const { stack } = d;

  // A CA the emulator trusts, and an RSA key file certified by it.
  const caDir = join(stack.dir, 'ca');
  await initCa({ dir: caDir, subject: 'CN=Reload CA', days: 10 });
  const keyFile = join(stack.dir, 'edge.key');
  writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  const csr = await createCsr(fromKeyFile(keyFile), { subject: 'CN=edge-reload' });
  const cert = await issueCertificate({ caDir, csrPem: csr.pem, days: 5, outPath: join(stack.dir, 'edge.pem') });
  stack.emulator.createTrustAnchor({ arn: TA, caCertificatePem: readFileSync(join(caDir, 'ca.pem'), 'utf8') });
  stack.emulator.createRolesAnywhereProfile({ arn: PROFILE, roleArns: [EDGE_ROLE] });
  stack.emulator.createRole({ arn: EDGE_ROLE, trust: { rolesAnywhere: true } });

  t.equal((await get(d, '/v1/credentials/edge'))?.status, 404, 'no such profile before the reload');

  const config = parse(readFileSync(stack.configFile, 'utf8')) as { profiles: Record<string, unknown> };
  config.profiles.edge = {
    type: 'aws-rolesanywhere',
    certificate: cert.path,
    private_key: keyFile,
    trust_anchor_arn: TA,
    profile_arn: PROFILE,
    role_arn: EDGE_ROLE,
    endpoint: stack.emulator.rolesAnywhereEndpoint,
  };
  writeFileSync(stack.configFile, stringify(config));
  process.kill(d.pid, 'SIGHUP');

  const served = await waitFor(async () => {
    const r = await get(d, '/v1/credentials/edge');
    return r?.status === 200 ? r : undefined;
  }, 200);
  const body = JSON.parse(served.body.toString('utf8')) as { AccessKeyId: string };
  t.equal(stack.emulator.issued(body.AccessKeyId)?.roleArn, EDGE_ROLE, 'Roles Anywhere credentials for the added profile');
  t.equal((await get(d, '/v1/credentials/default'))?.status, 200, 'the OIDC profile still serves');
  t.ok(d.alive(), 'the same process: no restart');
  t.equal(await d.stop(), 0);
  t.ok(
    rec.read().some((f) => X509_STACK.test(f)),
    'the X.509 stack was loaded by the reload that needed it',
  );
});
