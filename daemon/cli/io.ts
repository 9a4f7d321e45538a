/** The CLI's view of the outside world, injectable so commands can be tested in-process. */
import { writeSync } from 'node:fs';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  readonly isTty: boolean;
}

export const processIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  // Asked when a command needs it: the first touch of process.stdout builds the stream.
  get isTty() {
    return Boolean(process.stdout.isTTY);
  },
};

/** Where a direct writer sends what a non-blocking descriptor would not take: process.stdout or stderr. */
export interface FallbackStream {
  write(chunk: Uint8Array | string): unknown;
}

/**
 * Writes a few lines straight to the descriptor, for the slim path's `auth`, `env` and `status`:
 * process.stdout is a stream whose first use loads node's stream machinery (and net, for a pipe),
 * some 4 ms of a command that runs per AWS CLI call. The write blocks until taken, as process.stdout
 * does for files, terminals and Linux pipes. A descriptor some other process made non-blocking
 * (EAGAIN) hands the rest, and everything after it, to the stream, which waits and keeps the order.
 * A reader that went away (EPIPE: `credport env | head -1`) ends the output quietly.
 */
export function directWriter(fd: number, fallback: () => FallbackStream): (s: string) => void {
  let stream: FallbackStream | undefined;
  return (s) => {
    if (stream) {
      stream.write(s);
      return;
    }
    let buf = Buffer.from(s, 'utf8');
    while (buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(fd, buf));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') return;
        if (code !== 'EAGAIN') throw err;
        stream = fallback();
        stream.write(buf);
        return;
      }
    }
  };
}

export const directIo: CliIo = {
  stdout: directWriter(1, () => process.stdout),
  stderr: directWriter(2, () => process.stderr),
  env: process.env,
  get isTty() {
    return Boolean(process.stdout.isTTY);
  },
};
