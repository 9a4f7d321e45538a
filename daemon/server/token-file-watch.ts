/**
 * `credport token rotate` replaces the token file while the daemon runs. The daemon notices in two
 * ways: a reload (SIGHUP) re-reads the file, and a request whose token does not match makes it look
 * whether the file changed (its inode, size or time) and re-read it if so. The second closes the
 * gap between the new file and the signal: an SDK that re-reads the token file per request may
 * present the new token before the daemon was told, and is served, not refused.
 */
import { statSync } from 'node:fs';
import { readTokenFile } from './token-file.js';

export interface TokenFileWatch {
  /** Re-reads the file if it changed since last read; true when the token is now a different one. */
  refresh(): boolean;
  current(): string;
}

function signature(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return undefined;
  }
}

export function watchTokenFile(
  path: string,
  initial: string,
  onChange: (token: string) => void,
  onError: (err: Error) => void,
): TokenFileWatch {
  let token = initial;
  let seen = signature(path);
  return {
    current: () => token,
    refresh() {
      const now = signature(path);
      if (now === undefined || now === seen) return false;
      seen = now;
      let next: string;
      try {
        next = readTokenFile(path);
      } catch (err) {
        // A file that is not a token (wrong mode, a link, too short) keeps the current token in force.
        onError(err as Error);
        return false;
      }
      if (next === token) return false;
      token = next;
      onChange(next);
      return true;
    },
  };
}
