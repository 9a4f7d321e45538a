/**
 * The README's first command: `credport demo` serves credentials that the real
 * AWS CLI prints, through both endpoints, and Google's clients get Google Cloud
 * tokens beside them; it cleans up on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCliAsync, spawnCli, waitFor } from './helpers/cli.js';
import { EmptyHome } from './helpers/clients.js';
import {
  debianGoogleAuth,
  googleAuthLibrary,
  googleEnv,
  metadataEnv,
  runNodeGoogleAuth,
  runPythonGoogleAuth,
} from './helpers/google-clients.js';
import { assertPresent, debianAws, needs } from './helpers/tools.js';

t.test('credport demo: the pasted lines work with the Debian AWS CLI', needs(debianAws), async (t) => {
  if (!assertPresent(t, debianAws)) return;
  const demo = spawnCli(['demo']);
  t.teardown(() => demo.child.kill('SIGKILL'));
  const out = await waitFor(() => (demo.stdout().includes('credport status --config') ? demo.stdout() : undefined), 300);
  const uri = /export AWS_CONTAINER_CREDENTIALS_FULL_URI=(\S+)/.exec(out)?.[1];
  const tokenFile = /export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=(\S+)/.exec(out)?.[1];
  const imds = /AWS_EC2_METADATA_SERVICE_ENDPOINT=(\S+)/.exec(out)?.[1];
  t.ok(uri && tokenFile && imds, 'prints the exports');
  t.match(out, /export AWS_CONTAINER_AUTHORIZATION_TOKEN="\$\(cat /, 'inline token through the shell, not printed');
  const token = readFileSync(tokenFile!, 'utf8');
  t.notOk(out.includes(token) || demo.stderr().includes(token), 'the token itself never appears in the output');

  const home = mkdtempSync(join(tmpdir(), 'credport-demo-home-'));
  const base = { PATH: '/usr/bin:/bin', HOME: home, AWS_REGION: 'us-east-1' };
  const viaEcs = spawnSync('/usr/bin/aws', ['configure', 'export-credentials', '--format', 'process'], {
    env: { ...base, AWS_CONTAINER_CREDENTIALS_FULL_URI: uri, AWS_CONTAINER_AUTHORIZATION_TOKEN: token },
    encoding: 'utf8',
  });
  t.equal(viaEcs.status, 0, viaEcs.stderr);
  const a = JSON.parse(viaEcs.stdout) as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string };
  t.match(a.AccessKeyId, /^ASIA[A-Z2-7]{16}$/);
  t.ok(new Date(a.Expiration).getTime() > Date.now() + 30 * 60_000, 'at least 30 minutes left');

  const viaImds = spawnSync('/usr/bin/aws', ['configure', 'export-credentials', '--format', 'process'], {
    env: { ...base, AWS_EC2_METADATA_SERVICE_ENDPOINT: imds },
    encoding: 'utf8',
  });
  t.equal(viaImds.status, 0, viaImds.stderr);
  const b = JSON.parse(viaImds.stdout) as typeof a;
  t.equal(b.AccessKeyId, a.AccessKeyId, 'both endpoints serve the same pre-fetched credentials');
  t.equal(b.SessionToken, a.SessionToken);

  // Google Cloud, side by side: the pasted env line, then Google's own library and Debian's python one.
  const configFile = /credport env --profile gcp --config (\S+)\)/.exec(out)?.[1];
  t.ok(configFile, 'prints the Google Cloud env line');
  const gEnv = await runCliAsync(['env', '--profile', 'gcp', '--config', configFile!]);
  t.equal(gEnv.status, 0, gEnv.stderr);
  const credentials = /GOOGLE_APPLICATION_CREDENTIALS='([^']+)'/.exec(gEnv.stdout)?.[1];
  const gHome = new EmptyHome();
  t.teardown(() => gHome.remove());
  if (googleAuthLibrary.present) {
    const viaFile = await runNodeGoogleAuth(
      googleEnv(gHome, { GOOGLE_APPLICATION_CREDENTIALS: credentials!, GOOGLE_CLOUD_PROJECT: 'credport-demo' }),
    );
    t.match(
      viaFile.accessToken,
      /^gcpemu-sa\./,
      `google-auth-library got a service-account token through the external_account file ${viaFile.error ?? ''}`,
    );
  } else t.fail('google-auth-library is not installed (npm install)');
  t.match(out, /credport env --profile gcp --metadata --config /, 'prints the metadata-server line');
  const mEnv = await runCliAsync(['env', '--profile', 'gcp', '--metadata', '--config', configFile!]);
  t.match(mEnv.stdout, /^unset GOOGLE_APPLICATION_CREDENTIALS$/m, 'the credential file would win over the metadata server');
  const metadataHost = /export GCE_METADATA_HOST='([^']+)'/.exec(mEnv.stdout)?.[1];
  if (debianGoogleAuth.present) {
    const viaMetadata = await runPythonGoogleAuth(googleEnv(gHome, metadataEnv(metadataHost!)), 'compute');
    t.match(viaMetadata.accessToken, /^gcpemu-sa\./, `python3-google-auth got it through the metadata server ${viaMetadata.error ?? ''}`);
  } else t.fail('python3-google-auth is not installed (apt-get install python3-google-auth)');

  // Azure, beside them: the pasted env line, then the managed identity endpoint as the SDKs call it.
  t.match(out, /credport env --profile azure --config /, 'prints the Azure env line');
  const aEnv = await runCliAsync(['env', '--profile', 'azure', '--config', configFile!]);
  const endpoint = /export IDENTITY_ENDPOINT='([^']+)'/.exec(aEnv.stdout)?.[1];
  const header = /export IDENTITY_HEADER='([^']+)'/.exec(aEnv.stdout)?.[1];
  const mi = await fetch(`${endpoint}?api-version=2019-08-01&resource=https://management.azure.com`, {
    headers: { 'x-identity-header': header ?? '' },
  });
  t.equal(mi.status, 200, 'the managed identity endpoint answers with an Entra-emulator token');
  t.match(await mi.json(), { token_type: 'Bearer', resource: 'https://management.azure.com', expires_on: /^\d+$/ });

  const dir = tokenFile!.slice(0, tokenFile!.lastIndexOf('/'));
  demo.child.kill('SIGINT');
  t.equal(await demo.exited, 0, 'Ctrl-C: exit 0');
  t.notOk(existsSync(dir), 'temporary directory removed');
});
