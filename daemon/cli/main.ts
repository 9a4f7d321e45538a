/** The `credport` command: dispatch, --help, --version, and one-line errors with exit codes. */
import { VERSION } from '../version.js';
import { CliError, EXIT } from './cli-error.js';
import type { Command } from './command.js';
import { processIo, type CliIo } from './io.js';
import { closest } from './suggest.js';

export interface CommandEntry {
  name: string;
  summary: string;
  /** Loaded only when run: `credport auth` is on the SDKs' credential_process path, so start-up counts. */
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'init', summary: 'create the device key and a starter config', load: async () => (await import('./commands/init.js')).initCommand },
  { name: 'serve', summary: 'run the daemon in the foreground', load: async () => (await import('./commands/serve.js')).serveCommand },
  { name: 'auth', summary: 'print credentials (credential_process, env or json)', load: async () => (await import('./commands/auth.js')).authCommand },
  { name: 'env', summary: 'print the exports that point SDKs at the daemon', load: async () => (await import('./commands/env.js')).envCommand },
  { name: 'exec', summary: 'run a command whose AWS SDK gets credentials from the daemon', load: async () => (await import('./commands/exec.js')).execCommand },
  { name: 'configure aws', summary: 'write a credential_process profile into ~/.aws/config', load: async () => (await import('./commands/configure-aws.js')).configureAwsCommand },
  { name: 'profiles', summary: 'list profiles with their type, endpoint URLs and state', load: async () => (await import('./commands/profiles.js')).profilesCommand },
  { name: 'status', summary: "show the daemon's state", load: async () => (await import('./commands/status.js')).statusCommand },
  { name: 'reload', summary: 'make the running daemon re-read its config', load: async () => (await import('./commands/reload.js')).reloadCommand },
  { name: 'logs', summary: "print (and follow) the daemon's log", load: async () => (await import('./commands/logs.js')).logsCommand },
  { name: 'audit', summary: 'show which process got which credentials (the audit log)', load: async () => (await import('./commands/audit.js')).auditCommand },
  { name: 'doctor', summary: 'check config, key, token, daemon, clock and the shell, with fixes', load: async () => (await import('./commands/doctor.js')).doctorCommand },
  { name: 'service', summary: 'install/uninstall/start/stop/restart/status the launchd or systemd service', load: async () => (await import('./commands/service.js')).serviceCommand },
  { name: 'key show', summary: 'print the public key, its thumbprint and where it lives', load: async () => (await import('./commands/key.js')).keyShowCommand },
  { name: 'key delete', summary: 'destroy the device key (asks first)', load: async () => (await import('./commands/key.js')).keyDeleteCommand },
  { name: 'cert csr', summary: 'write a CSR for the device key (signed inside its backend)', load: async () => (await import('./commands/cert.js')).certCsrCommand },
  { name: 'cert import', summary: 'check a certificate against the device key and install it', load: async () => (await import('./commands/cert.js')).certImportCommand },
  { name: 'cert show', summary: 'describe certificates: subject, serial, validity, key match, chain', load: async () => (await import('./commands/cert.js')).certShowCommand },
  { name: 'ca init', summary: 'create a small local CA (its certificate is the trust anchor)', load: async () => (await import('./commands/ca.js')).caInitCommand },
  { name: 'ca issue', summary: 'issue a device certificate from a CSR', load: async () => (await import('./commands/ca.js')).caIssueCommand },
  { name: 'oidc export', summary: 'write the issuer discovery document and JWKS for publishing', load: async () => (await import('./commands/oidc-export.js')).oidcExportCommand },
  { name: 'demo', summary: 'run daemon + local AWS emulator end to end, no cloud account needed', load: async () => (await import('./commands/demo.js')).demoCommand },
  { name: 'completion', summary: 'print the bash, zsh or fish completion script', load: async () => (await import('./commands/completion.js')).completionCommand },
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `credport ${VERSION}: device-bound identity to short-lived AWS credentials, served on localhost

Usage: credport COMMAND [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'credport COMMAND --help' (or 'credport help COMMAND') for a command's options.
--config PATH and --json may come before or after the command.
Config: --config PATH, else $CREDPORT_CONFIG, else $XDG_CONFIG_HOME/credport/config.toml

Exit codes: 0 ok, 1 failure (credentials unavailable, upstream error),
2 usage error, 3 config/key/token file problem, 4 daemon not running.
`;
}

function findCommand(argv: string[]): { command: CommandEntry; rest: string[] } | undefined {
  for (const c of COMMANDS) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command: c, rest: argv.slice(words.length) };
  }
  return undefined;
}

/**
 * `--config PATH` (`-c PATH`, `--config=PATH`) and `--json` given before the command: taken off the
 * front and handed to the command, whose own parser then accepts or refuses them as usual.
 */
function leadingGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '--json' || a.startsWith('--config=')) {
      globals.push(a);
      i += 1;
    } else if ((a === '--config' || a === '-c') && i + 1 < argv.length) {
      globals.push(a, argv[i + 1]!);
      i += 2;
    } else break;
  }
  return { globals, rest: argv.slice(i) };
}

function groupUsage(group: string, members: CommandEntry[]): string {
  const width = Math.max(...members.map((c) => c.name.length));
  return `Usage: credport ${group} SUBCOMMAND [options]

Subcommands:
${members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'credport ${group} SUBCOMMAND --help' for a subcommand's options.
`;
}

function unknownCommand(word: string): CliError {
  const words = new Set(COMMANDS.map((c) => c.name.split(' ')[0]!));
  const near = closest(word, [...words, 'help', 'version']);
  return new CliError(`unknown command '${word}'`, EXIT.usage, `${near ? `did you mean '${near}'? ` : ''}run 'credport --help' for the list`);
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const { globals, rest: words } = leadingGlobals(argv);
  let first = words[0];
  if (first === 'help' && words.length > 1) {
    // `credport help key show` is `credport key show --help`.
    words.splice(0, 1);
    words.push('--help');
    first = words[0];
  }
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout(usage());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    io.stdout(`${VERSION}\n`);
    return EXIT.ok;
  }
  const found = findCommand(words);
  try {
    if (!found) {
      const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
      if (group.length > 0) {
        const sub = words[1];
        if (sub === '--help' || sub === '-h') {
          io.stdout(groupUsage(first, group));
          return EXIT.ok;
        }
        const subs = group.map((c) => c.name.slice(first.length + 1));
        const near = sub !== undefined && !sub.startsWith('-') ? closest(sub, subs) : undefined;
        const what = sub !== undefined && !sub.startsWith('-') ? `unknown subcommand '${first} ${sub}'` : `'${first}' needs a subcommand`;
        throw new CliError(`${what}: ${group.map((c) => c.name).join(', ')}`, EXIT.usage, near ? `did you mean '${first} ${near}'?` : `see 'credport ${first} --help'`);
      }
      throw unknownCommand(first);
    }
    return await (await found.command.load()).run([...globals, ...found.rest], io);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr(`credport: ${err.message}${err.hint ? ` (${err.hint})` : ''}\n`);
      return err.exitCode;
    }
    // Unexpected: still one line, no stack (a stack could quote secrets from arguments).
    io.stderr(`credport: unexpected error: ${(err as Error).message ?? String(err)}\n`);
    return EXIT.failure;
  }
}
