/**
 * The slim path of the commands a running daemon answers (`auth`, `env`, `status`): `credport auth`
 * runs once per AWS CLI call (credential_process), and most of a full start is the config's parse and
 * validation, and the modules behind them. Taken only when the daemon vouches for the config file's
 * exact bytes (find-daemon.ts) and the command line is one of the ordinary ones; undefined hands the
 * command to main.ts, unchanged, which prints every usage and config error as always.
 */
import { parseArgs } from 'node:util';
import type { CliContext, CloudCli } from '../../clouds/types.js';
import { leadingGlobals } from '../globals.js';
import type { CliIo } from '../io.js';
import { reportError } from '../report-error.js';
import { findSlimDaemon, type SlimDaemon } from './find-daemon.js';
import { FullPathNeeded } from './full-path.js';

type Values = Record<string, string | boolean | undefined>;

const COMMON = { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } as const;

/** The same options as the commands' own parsers (commands/auth.ts, env.ts, status.ts). */
const OPTIONS = {
  auth: { ...COMMON, profile: { type: 'string', short: 'p' }, format: { type: 'string', short: 'f' }, direct: { type: 'boolean' } },
  env: {
    ...COMMON,
    profile: { type: 'string' },
    'inline-token': { type: 'boolean' },
    imds: { type: 'boolean' },
    metadata: { type: 'boolean' },
    'federated-token': { type: 'boolean' },
  },
  status: { ...COMMON, json: { type: 'boolean' } },
} as const;

type Name = keyof typeof OPTIONS;

function parse(name: Name, args: string[]): Values | undefined {
  try {
    return parseArgs({ args, options: OPTIONS[name], strict: true, allowPositionals: false }).values as Values;
  } catch {
    return undefined; // the full path words the error
  }
}

/** A profile's CLI half and its context; undefined for a profile the view does not know. */
async function profileCli(d: SlimDaemon, profile: string, io: CliIo): Promise<{ cli: CloudCli; ctx: CliContext } | undefined> {
  if (!Object.hasOwn(d.view.profiles, profile)) return undefined;
  const { CLOUD_CLIS } = await import('../../clouds/cli-loaders.js');
  const cloud = d.view.profiles[profile]!.cloud;
  const load = Object.hasOwn(CLOUD_CLIS, cloud) ? CLOUD_CLIS[cloud] : undefined;
  if (!load) return undefined;
  return { cli: await load(), ctx: { config: d.config, env: io.env, baseUrl: d.base } };
}

async function auth(d: SlimDaemon, v: Values, io: CliIo): Promise<number | undefined> {
  const profile = (v.profile as string | undefined) ?? d.view.defaultProfile;
  const found = await profileCli(d, profile, io);
  if (!found) return undefined;
  const { cli, ctx } = found;
  const format = (v.format as string | undefined) ?? cli.formats[0];
  if (format === undefined || !cli.formats.includes(format)) return undefined;
  // A special format may need the key (a direct signature), which the view does not carry.
  if (cli.special && (!cli.specialFormats || cli.specialFormats.includes(format))) return undefined;
  const creds = await cli.fromDaemon(ctx, profile, 'auth');
  if (!creds) return undefined; // not reachable after all: the full path asks again, then fetches directly
  io.stdout(cli.render(creds, format));
  return 0;
}

async function env(d: SlimDaemon, v: Values, io: CliIo): Promise<number | undefined> {
  const profile = (v.profile as string | undefined) ?? d.view.defaultProfile;
  const found = await profileCli(d, profile, io);
  if (!found) return undefined;
  const lines = found.cli.env(found.ctx, profile, v);
  io.stdout(`${lines.join('\n')}\n`);
  return 0;
}

async function status(d: SlimDaemon, v: Values, io: CliIo): Promise<number | undefined> {
  const { askDaemon, expectedDaemonUid } = await import('../daemon-client.js');
  const reply = await askDaemon(d.base, '/health', {}, 3000, expectedDaemonUid(d.config));
  // Not answering: the full path explains why, in the words it always has.
  if (!reply.reachable) return undefined;
  const { printHealth } = await import('../status-report.js');
  return printHealth(reply, d.base, v.json === true, io);
}

const RUN: Record<Name, (d: SlimDaemon, v: Values, io: CliIo) => Promise<number | undefined>> = { auth, env, status };

/** The exit code when the slim path answered (or failed as the full path would); undefined: take the full path. */
export async function runFast(argv: string[], io: CliIo): Promise<number | undefined> {
  const { globals, rest } = leadingGlobals(argv);
  const name = rest[0];
  if (name !== 'auth' && name !== 'env' && name !== 'status') return undefined;
  const v = parse(name, [...globals, ...rest.slice(1)]);
  if (!v || v.help || v.direct) return undefined;
  let d: SlimDaemon | undefined;
  try {
    d = findSlimDaemon(v.config as string | undefined, io.env);
  } catch {
    return undefined; // any doubt about the daemon's view: the full path, which words every problem
  }
  if (!d) return undefined;
  try {
    return await RUN[name](d, v, io);
  } catch (err) {
    if (err instanceof FullPathNeeded || FullPathNeeded.thrown) return undefined;
    // What the daemon answered (a refusal, an impostor on its port) is reported as the full path would.
    return reportError(err, io);
  }
}
