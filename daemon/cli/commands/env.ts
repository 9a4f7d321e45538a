/** `credport env`: the shell exports that point a profile's cloud SDKs at the daemon. */
import { parseFlags } from '../args.js';
import { cliContext } from '../daemon-locator.js';
import { EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { cloudCliOf, requireProfile } from '../profile-arg.js';
import { loadCliConfig } from '../shared.js';

const HELP = `Usage: credport env [options]

Prints shell exports that make unmodified SDKs and CLIs fetch credentials
from the daemon:

  eval "$(credport env)"

For an AWS profile: the container-credentials variables. For a Google Cloud
profile: GOOGLE_APPLICATION_CREDENTIALS, pointing at an external_account
file written for the profile (0600), and GOOGLE_CLOUD_PROJECT. For an Azure
profile: IDENTITY_ENDPOINT and IDENTITY_HEADER (the App Service managed
identity protocol) and AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential.

Options:
  --profile NAME     serve this profile instead of the default
  --inline-token     AWS: export AWS_CONTAINER_AUTHORIZATION_TOKEN itself, for
                     older SDKs that do not read the token file (puts the token
                     in your environment, visible to every child process)
  --imds             AWS: also export AWS_EC2_METADATA_SERVICE_ENDPOINT (with a
                     trailing "/", which every tested client accepts)
  --metadata         Google Cloud: point clients at the metadata server
                     instead (GCE_METADATA_HOST and the variables older
                     clients read; unsets GOOGLE_APPLICATION_CREDENTIALS)
  --federated-token  Azure: the workload identity variables instead
                     (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID,
                     AZURE_TENANT_ID, AZURE_AUTHORITY_HOST); the profile
                     needs federated_token_file = true
  -c, --config PATH  config file
  -h, --help         show this help`;

export const envCommand: Command = {
  name: 'env',
  help: HELP,
  async run(argv, io) {
    const { values } = parseFlags('env', argv, {
      profile: { type: 'string' },
      'inline-token': { type: 'boolean' },
      imds: { type: 'boolean' },
      metadata: { type: 'boolean' },
      'federated-token': { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const cfg = loadCliConfig(values.config, io);
    const profile = values.profile ?? cfg.defaultProfile;
    requireProfile(cfg, profile);
    const { cli } = await cloudCliOf(cfg, profile);
    const lines = cli.env(cliContext(cfg, io.env), profile, values);
    io.stdout(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};
