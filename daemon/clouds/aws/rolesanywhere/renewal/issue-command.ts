/**
 * Renewal by a program (step-ca, Vault PKI, cfssl, a script): the CSR PEM on its stdin, the chain PEM
 * expected on its stdout. argv only (no shell to interpret anything), an environment holding PATH
 * alone (the daemon's own variables stay with the daemon), a deadline after which the whole process
 * group is killed, and bounded reads of both outputs: a program that hangs, floods or prints garbage
 * costs a failed attempt, nothing more.
 */
import { spawn } from 'node:child_process';
import { sanitizeMessage } from '../../../../providers/upstream/error-text.js';
import type { CertificateIssuer } from './issuer.js';
import { RenewalError } from './renewal-error.js';

/** A chain of a few certificates is a few KiB; more is not a chain. */
const MAX_STDOUT_BYTES = 256 * 1024;
const MAX_STDERR_BYTES = 4 * 1024;
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

export interface CommandIssuerOptions {
  argv: readonly string[];
  timeoutMs: number;
  /** PATH for the program (default: the daemon's own, else a standard one). */
  path?: string;
}

function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return sanitizeMessage(lines.at(-1) ?? '').slice(0, 200);
}

export function commandIssuer(opts: CommandIssuerOptions): CertificateIssuer {
  const [program, ...args] = opts.argv;
  if (program === undefined) throw new RenewalError('RenewalMisconfigured', 'renewal.command is empty');
  return {
    method: 'command',
    source: `the command ${program}`,
    issue({ csrPem, signal }) {
      return new Promise<string>((resolve, reject) => {
        const fail = (code: string, message: string) => reject(new RenewalError(code, `${program}: ${message}`));
        let child: ReturnType<typeof spawn>;
        try {
          child = spawn(program, args, {
            env: { PATH: opts.path ?? process.env.PATH ?? DEFAULT_PATH },
            stdio: ['pipe', 'pipe', 'pipe'],
            shell: false,
            // Its own process group, so that the deadline kills what it started too.
            detached: true,
          });
        } catch (err) {
          fail('RenewalCommandFailed', `cannot start (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
          return;
        }
        const out: Buffer[] = [];
        let outBytes = 0;
        let err = '';
        let settled = false;
        const kill = () => {
          try {
            if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
          } catch {
            child.kill('SIGKILL');
          }
        };
        const finish = (f: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          f();
        };
        const timer = setTimeout(() => {
          kill();
          finish(() => fail('RenewalCommandTimeout', `did not finish within ${Math.round(opts.timeoutMs / 1000)} s; killed`));
        }, opts.timeoutMs);
        timer.unref();
        const onAbort = () => {
          kill();
          finish(() => fail('Aborted', 'cancelled'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        child.on('error', (e: NodeJS.ErrnoException) => {
          finish(() =>
            fail(
              'RenewalCommandFailed',
              e.code === 'ENOENT' ? 'not found (give an absolute path, or one on PATH)' : `cannot start (${e.code ?? 'error'})`,
            ),
          );
        });
        child.stdout?.on('data', (chunk: Buffer) => {
          outBytes += chunk.length;
          if (outBytes > MAX_STDOUT_BYTES) {
            kill();
            finish(() => fail('RenewalCommandFailed', `printed more than ${MAX_STDOUT_BYTES} bytes; a certificate chain is a few KiB`));
            return;
          }
          out.push(chunk);
        });
        child.stderr?.on('data', (chunk: Buffer) => {
          if (err.length < MAX_STDERR_BYTES) err += chunk.toString('utf8').slice(0, MAX_STDERR_BYTES - err.length);
        });
        child.on('close', (code, sig) => {
          finish(() => {
            if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
            else {
              const why = sig !== null ? `killed by ${sig}` : `exited with status ${code}`;
              const said = lastLine(err);
              fail('RenewalCommandFailed', said === '' ? why : `${why}: ${said}`);
            }
          });
        });
        // A program that never reads its stdin must not make the write fail the daemon.
        child.stdin?.on('error', () => undefined);
        child.stdin?.end(csrPem);
      });
    },
  };
}
