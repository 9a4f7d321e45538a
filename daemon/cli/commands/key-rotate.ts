/**
 * `credport key rotate`: a new device key without a moment in which no published key signs.
 * Order: create the new key beside the old, publish it (the JWKS then holds both), switch the key
 * file and the running daemon over, and only after a grace period (tokens and JWKS caches of the
 * old key age out) revoke the old key and destroy its file. Each step is recorded in a state file
 * beside the key before the next begins, so an interrupted rotation is resumed, never restarted.
 */
import { closeSync, constants, existsSync, fstatSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { ResolvedConfig } from '../../config/load.js';
import { mergeJwks, publishedJwk, withoutKid } from '../../identity/issuer-documents.js';
import { changeIssuer, describeTarget, type IssuerTarget, parseTarget } from '../../issuer/targets.js';
import { FileKeySigner } from '../../keys/file/signer.js';
import type { HealthReport } from '../../server/health-report.js';
import { parseJsonObject, readSmallFile, writeFileAtomic } from '../../util/secure-file.js';
import { parseFlags } from '../args.js';
import { CliError, EXIT } from '../cli-error.js';
import type { Command } from '../command.js';
import { locateDaemon } from '../daemon-locator.js';
import { changeOptions, ISSUER_FLAGS, ISSUER_FLAGS_HELP, issuerCliError, requireOidc } from '../issuer-flags.js';
import { askDaemon, expectedDaemonUid, loadCliConfig } from '../shared.js';
import { daemonRunning, signalReload } from '../signal-reload.js';
import type { CliIo } from '../io.js';

const HELP = `Usage: credport key rotate [s3://BUCKET[/PREFIX] | DIR ...] [options]

Replaces the device key (file backend) in four steps, each recorded in
KEY.rotation.json so that an interrupted run resumes where it stopped:

  1. creates the new key beside the old one (KEY.next)
  2. publishes it to every place named (default: [oidc] publish_bucket);
     the JWKS now holds both keys
  3. switches: the old key file is kept as KEY.retired, the new one takes
     its place, and the running daemon is told (SIGHUP) and signs with it
  4. after the grace period: 'credport key rotate --finish' revokes the old
     key from the same places and destroys KEY.retired. Running
     'credport key rotate' again once the grace period is over does the same.

At no moment is neither key published: the new key is in the JWKS before
the daemon uses it, and the old one leaves only after the grace period
(JWTs live minutes, but STS and CloudFront keep a JWKS for a while).

The JWT subject must not depend on the key: set [oidc] subject (for example
to the current "device:<thumbprint>") before rotating, or the roles that
trust this device stop trusting it.

Options:
  --grace DURATION        how long the old key stays published after the
                          switch: 30m, 12h, 7d (default 24h)
  --finish                revoke the old key and destroy its file (after the
                          grace period)
  --now                   with --finish: do not wait for the grace period
${ISSUER_FLAGS_HELP}
  -c, --config PATH       config file
  -h, --help              show this help`;

type Phase = 'creating' | 'published' | 'switched';

interface RotationState {
  phase: Phase;
  old_kid: string;
  new_kid?: string;
  targets: string[];
  grace_seconds: number;
  switched_at?: string;
}

function parseDuration(text: string): number {
  const m = /^([1-9][0-9]{0,5})([smhd])$/.exec(text);
  if (!m) throw new CliError(`--grace: expected a duration like 30m, 12h or 7d, not ${JSON.stringify(text.slice(0, 20))}`, EXIT.usage);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function readState(path: string): RotationState | undefined {
  if (!existsSync(path)) return undefined;
  const r = parseJsonObject(readSmallFile(path) ?? '');
  const phases: Phase[] = ['creating', 'published', 'switched'];
  if (
    !r ||
    !phases.includes(r.phase as Phase) ||
    typeof r.old_kid !== 'string' ||
    !Array.isArray(r.targets) ||
    !r.targets.every((x) => typeof x === 'string') ||
    typeof r.grace_seconds !== 'number'
  ) {
    throw new CliError(`${path} is not a rotation state credport wrote; look at it, then remove it to start over`, EXIT.config);
  }
  return r as unknown as RotationState;
}

function writeState(path: string, s: RotationState): void {
  writeFileAtomic(path, `${JSON.stringify(s, null, 2)}\n`, 0o600);
}

/** Overwritten before unlinking: a key file's blocks should not outlive it on a simple file system. */
function destroyKeyFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    writeSync(fd, randomBytes(size), 0, size, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  unlinkSync(path);
}

async function waitForDaemonKey(cfg: ResolvedConfig, kid: string): Promise<boolean> {
  const { base } = locateDaemon(cfg);
  for (let i = 0; i < 50; i++) {
    const r = await askDaemon(base, '/health', {}, 3000, expectedDaemonUid(cfg));
    if (r.reachable && (r.body as HealthReport).key?.thumbprint === kid) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

export const keyRotateCommand: Command = {
  name: 'key rotate',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseFlags(
      'key rotate',
      argv,
      { grace: { type: 'string' }, finish: { type: 'boolean' }, now: { type: 'boolean' }, ...ISSUER_FLAGS },
      16,
    );
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (values.now && !values.finish) throw new CliError('--now goes with --finish', EXIT.usage);
    const cfg = loadCliConfig(values.config, io);
    const oidc = requireOidc(cfg);
    if (cfg.key.backend !== 'file') {
      throw new CliError(
        `key rotate handles file keys; this key is a ${cfg.key.backend} key`,
        EXIT.usage,
        'create a new key in the token, publish it with oidc publish, point [key] at it, reload, and revoke the old kid later',
      );
    }
    const keyPath = cfg.key.path;
    const statePath = `${keyPath}.rotation.json`;
    const nextPath = `${keyPath}.next`;
    const retiredPath = `${keyPath}.retired`;
    const options = changeOptions(values, oidc);
    let state = readState(statePath);

    if (state?.phase === 'switched' || values.finish) {
      if (!state) throw new CliError('no rotation in progress; nothing to finish', EXIT.failure);
      if (state.phase !== 'switched')
        throw new CliError('the rotation has not switched keys yet; run credport key rotate to complete it first', EXIT.failure);
      const due = Date.parse(state.switched_at ?? '') + state.grace_seconds * 1000;
      if (!(Date.now() >= due) && !values.now) {
        if (values.finish)
          throw new CliError(
            `the grace period ends at ${new Date(due).toISOString()}; the old key ${state.old_kid} stays published until then`,
            EXIT.failure,
            'pass --finish --now to revoke it at once',
          );
        throw new CliError(
          `a rotation is in progress: the old key ${state.old_kid} stays published until ${new Date(due).toISOString()}`,
          EXIT.failure,
          "run 'credport key rotate --finish' after then",
        );
      }
      return finish(state, statePath, retiredPath, oidc.issuer, options, io);
    }

    if (oidc.subject === undefined && cfg.profiles.size > 0) {
      const current = FileKeySigner.open(keyPath);
      throw new CliError(
        `the JWT subject is derived from the key (device:${current.thumbprint}); a new key would change it and the roles that trust it would refuse this device`,
        EXIT.config,
        `set subject = "device:${current.thumbprint}" in [oidc] first (then reload), and rotate again`,
      );
    }

    if (!state) {
      const targets = positionals.length > 0 ? positionals : oidc.publish_bucket ? [oidc.publish_bucket] : [];
      if (targets.length === 0)
        throw new CliError(
          'nowhere to publish the new key',
          EXIT.usage,
          'name where the issuer is kept (s3://BUCKET[/PREFIX] or the export directory), or set [oidc] publish_bucket',
        );
      targets.forEach((x) => parseTarget(x));
      const old = FileKeySigner.open(keyPath);
      if (existsSync(nextPath) || existsSync(retiredPath))
        throw new CliError(
          `${existsSync(nextPath) ? nextPath : retiredPath} exists but no rotation is recorded; remove it first`,
          EXIT.config,
        );
      state = {
        phase: 'creating',
        old_kid: old.thumbprint,
        targets,
        grace_seconds: parseDuration((values.grace as string | undefined) ?? '24h'),
      };
      writeState(statePath, state);
    } else if (positionals.length > 0 || values.grace) {
      io.stderr(`credport: resuming the rotation recorded in ${statePath}; its places and grace period are kept\n`);
    }
    const targets: IssuerTarget[] = state.targets.map((x) => parseTarget(x));

    if (state.phase === 'creating') {
      const next = existsSync(nextPath) ? FileKeySigner.open(nextPath) : FileKeySigner.create(nextPath);
      const jwk = publishedJwk(next.publicJwk(), next.thumbprint);
      for (const target of targets) {
        try {
          const r = await changeIssuer(target, oidc.issuer, (jwks) => mergeJwks(jwks, jwk), options);
          io.stdout(`published ${next.thumbprint}: ${r.where} (${r.keyCount} keys)\n`);
          if (r.warning) io.stderr(`credport: warning: ${r.warning}\n`);
        } catch (err) {
          issuerCliError(err);
        }
      }
      state = { ...state, phase: 'published', new_kid: next.thumbprint };
      writeState(statePath, state);
    }

    if (state.phase === 'published') {
      // Resumed after the rename: the new key is already in place.
      if (existsSync(nextPath)) {
        if (!existsSync(retiredPath)) linkSync(keyPath, retiredPath);
        // One rename: the key path holds the old key or the new one, never neither.
        renameSync(nextPath, keyPath);
      }
      const now = FileKeySigner.open(keyPath).thumbprint;
      if (now !== state.new_kid)
        throw new CliError(`${keyPath} holds key ${now}, not the new key ${state.new_kid}; look at ${statePath}`, EXIT.failure);
      state = { ...state, phase: 'switched', switched_at: new Date().toISOString() };
      writeState(statePath, state);
    }

    const due = new Date(Date.parse(state.switched_at!) + state.grace_seconds * 1000).toISOString();
    if (daemonRunning(cfg)) {
      await signalReload(cfg);
      if (!(await waitForDaemonKey(cfg, state.new_kid!)))
        throw new CliError(
          `the daemon was told but does not show the new key ${state.new_kid}`,
          EXIT.failure,
          'see its log, or restart it',
        );
      io.stdout(`the daemon signs with ${state.new_kid}\n`);
    } else {
      io.stdout(`no daemon is running; it uses ${state.new_kid} when it starts\n`);
    }
    io.stdout(
      `switched from ${state.old_kid} to ${state.new_kid}; the old key stays published until ${due}\n` +
        `then run: credport key rotate --finish\n`,
    );
    return EXIT.ok;
  },
};

async function finish(
  state: RotationState,
  statePath: string,
  retiredPath: string,
  issuer: string,
  options: ReturnType<typeof changeOptions>,
  io: CliIo,
): Promise<number> {
  for (const text of state.targets) {
    const target = parseTarget(text);
    try {
      const r = await changeIssuer(target, issuer, (jwks) => withoutKid(jwks, state.old_kid).jwks, options);
      io.stdout(`${r.changed ? `revoked ${state.old_kid}` : 'unchanged'}: ${describeTarget(target)} (${r.keyCount} keys)\n`);
      if (r.warning) io.stderr(`credport: warning: ${r.warning}\n`);
    } catch (err) {
      issuerCliError(err);
    }
  }
  destroyKeyFile(retiredPath);
  unlinkSync(statePath);
  io.stdout(`rotation finished: ${state.new_kid} is the device key; the old key file is destroyed\n`);
  return EXIT.ok;
}
