/** Devices for the fleet tests: each its own file key and config, as on separate machines. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';

export interface Device {
  config: string;
  keyFile: string;
  kid: string;
}

export function makeDevice(dir: string, name: string, issuer: string, extraOidc = ''): Device {
  const home = join(dir, name);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const keyFile = join(home, 'device-key.pem');
  const signer = FileKeySigner.create(keyFile);
  const config = join(home, 'config.toml');
  writeFileSync(
    config,
    `[daemon]
listen = "127.0.0.1:9"
token_file = "${join(home, 'token')}"
lock_file = "${join(home, 'daemon.pid')}"
audit_file = "${join(home, 'audit.log')}"

[key]
backend = "file"
path = "${keyFile}"

[oidc]
issuer = "${issuer}"
subject = "device:${name}"
${extraOidc}
[profiles.default]
type = "aws-oidc"
role_arn = "arn:aws:iam::111122223333:role/fleet"
`,
    { mode: 0o600 },
  );
  return { config, keyFile, kid: signer.thumbprint };
}
