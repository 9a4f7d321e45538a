/** Every command, loaded only when run: `credport auth` is on the SDKs' credential_process path. */
import type { CommandEntry } from './command.js';

export type { CommandEntry } from './command.js';

export const COMMANDS: CommandEntry[] = [
  {
    name: 'init',
    summary: 'create the device key and a starter config',
    load: async () => (await import('./commands/init.js')).initCommand,
  },
  { name: 'serve', summary: 'run the daemon in the foreground', load: async () => (await import('./commands/serve.js')).serveCommand },
  {
    name: 'auth',
    summary: 'print credentials (credential_process, env or json)',
    load: async () => (await import('./commands/auth.js')).authCommand,
  },
  {
    name: 'env',
    summary: 'print the exports that point SDKs at the daemon',
    load: async () => (await import('./commands/env.js')).envCommand,
  },
  {
    name: 'exec',
    summary: 'run a command whose AWS SDK gets credentials from the daemon',
    load: async () => (await import('./commands/exec.js')).execCommand,
  },
  {
    name: 'configure aws',
    summary: 'write a credential_process profile into ~/.aws/config',
    load: async () => (await import('./commands/configure-aws.js')).configureAwsCommand,
  },
  {
    name: 'profiles',
    summary: 'list profiles with their type, endpoint URLs and state',
    load: async () => (await import('./commands/profiles.js')).profilesCommand,
  },
  { name: 'status', summary: "show the daemon's state", load: async () => (await import('./commands/status.js')).statusCommand },
  {
    name: 'reload',
    summary: 'make the running daemon re-read its config',
    load: async () => (await import('./commands/reload.js')).reloadCommand,
  },
  { name: 'logs', summary: "print (and follow) the daemon's log", load: async () => (await import('./commands/logs.js')).logsCommand },
  {
    name: 'audit',
    summary: 'show which process got which credentials (the audit log)',
    load: async () => (await import('./commands/audit.js')).auditCommand,
  },
  {
    name: 'doctor',
    summary: 'check config, key, token, daemon, clock and the shell, with fixes',
    load: async () => (await import('./commands/doctor.js')).doctorCommand,
  },
  {
    name: 'service',
    summary: 'install/uninstall/start/stop/restart/status the launchd or systemd service',
    load: async () => (await import('./commands/service.js')).serviceCommand,
  },
  {
    name: 'key show',
    summary: 'print the public key, its thumbprint and where it lives',
    load: async () => (await import('./commands/key.js')).keyShowCommand,
  },
  {
    name: 'key delete',
    summary: 'destroy the device key (asks first)',
    load: async () => (await import('./commands/key.js')).keyDeleteCommand,
  },
  {
    name: 'key rotate',
    summary: 'replace the device key: publish the new, switch, revoke the old after a grace period',
    load: async () => (await import('./commands/key-rotate.js')).keyRotateCommand,
  },
  {
    name: 'token rotate',
    summary: "replace the daemon's bearer token without a restart",
    load: async () => (await import('./commands/token.js')).tokenRotateCommand,
  },
  {
    name: 'cert csr',
    summary: 'write a CSR for the device key (signed inside its backend)',
    load: async () => (await import('./commands/cert.js')).certCsrCommand,
  },
  {
    name: 'cert import',
    summary: 'check a certificate against the device key and install it',
    load: async () => (await import('./commands/cert.js')).certImportCommand,
  },
  {
    name: 'cert show',
    summary: 'describe certificates: subject, serial, validity, key match, chain',
    load: async () => (await import('./commands/cert.js')).certShowCommand,
  },
  {
    name: 'cert renew',
    summary: 'renew Roles Anywhere certificates now, with the same key',
    load: async () => (await import('./commands/cert-renew.js')).certRenewCommand,
  },
  {
    name: 'ca init',
    summary: 'create a small local CA (its certificate is the trust anchor)',
    load: async () => (await import('./commands/ca.js')).caInitCommand,
  },
  {
    name: 'ca issue',
    summary: 'issue a device certificate from a CSR',
    load: async () => (await import('./commands/ca.js')).caIssueCommand,
  },
  {
    name: 'ca revoke',
    summary: 'revoke a certificate of the local CA (then: ca crl)',
    load: async () => (await import('./commands/ca.js')).caRevokeCommand,
  },
  {
    name: 'ca crl',
    summary: "issue the local CA's next CRL, for the trust anchor",
    load: async () => (await import('./commands/ca.js')).caCrlCommand,
  },
  {
    name: 'oidc export',
    summary: 'write the issuer discovery document and JWKS for publishing',
    load: async () => (await import('./commands/oidc-export.js')).oidcExportCommand,
  },
  {
    name: 'oidc publish',
    summary: "merge this device's key into the live JWKS (S3 conditional write)",
    load: async () => (await import('./commands/oidc-publish.js')).oidcPublishCommand,
  },
  {
    name: 'oidc revoke',
    summary: 'remove a key from the live JWKS',
    load: async () => (await import('./commands/oidc-publish.js')).oidcRevokeCommand,
  },
  {
    name: 'setup aws',
    summary: 'create the issuer, roles and Roles Anywhere as CloudFormation stacks',
    load: async () => (await import('./commands/setup-aws.js')).setupAwsCommand,
  },
  {
    name: 'demo',
    summary: 'run daemon + local AWS, Google and Entra emulators end to end, no cloud account needed',
    load: async () => (await import('./commands/demo.js')).demoCommand,
  },
  {
    name: 'completion',
    summary: 'print the bash, zsh or fish completion script',
    load: async () => (await import('./commands/completion.js')).completionCommand(() => COMMANDS),
  },
];
