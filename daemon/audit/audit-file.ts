/**
 * The audit file on disk: opened without following a symlink, created 0600
 * with O_EXCL in a private directory, refused when someone else could read it,
 * and rotated by renaming.
 *
 * Names: the current file is the configured path (e.g. audit.log); rotation
 * renames it to audit.log.1, audit.log.1 to audit.log.2, and so on, keeping
 * `keep` old files (audit.log.1 is the newest old one) and deleting the rest.
 */
import { constants, lstatSync, openSync, closeSync, readdirSync, statSync } from 'node:fs';
import { lstat, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { assertPrivateFile, ensurePrivateDir } from '../util/secure-file.js';

const WHAT = 'audit log';
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The rotated files that exist for `file`, as [number, path], in any order. */
function rotatedIn(file: string, names: string[]): Array<[number, string]> {
  const re = new RegExp(`^${escapeRegExp(basename(file))}\\.([1-9][0-9]{0,5})$`);
  const out: Array<[number, string]> = [];
  for (const n of names) {
    const m = re.exec(n);
    if (m) out.push([Number(m[1]), join(dirname(file), n)]);
  }
  return out;
}

/** Every audit file for `file` that exists, oldest first: audit.log.N … audit.log.1, audit.log. */
export function auditFiles(file: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dirname(file));
  } catch {
    return [];
  }
  const files = rotatedIn(file, names)
    .sort((a, b) => b[0] - a[0])
    .map(([, p]) => p);
  try {
    if (lstatSync(file).isFile()) files.push(file);
  } catch {
    // no current file (yet)
  }
  return files;
}

/** A directory anyone else can write to (or owns) would let them swap the file under us. */
function checkDir(dir: string): void {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new Error(`${WHAT} directory ${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new Error(`${WHAT} directory ${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}); refusing to write there`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new Error(
      `${WHAT} directory ${dir} is writable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 700 '${dir}'`,
    );
  }
}

/**
 * Checks (and creates) the file synchronously, for the constructor: a refusal
 * is a start-up error, not a line lost later.
 */
export function checkAuditFile(file: string): void {
  ensurePrivateDir(dirname(file));
  checkDir(dirname(file));
  let fd: number;
  try {
    fd = openSync(file, APPEND);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new Error(`${WHAT} ${file} is a symbolic link; refusing it (point audit_file at the real file)`);
    if (code !== 'ENOENT') throw err;
    fd = openSync(file, APPEND | constants.O_CREAT | constants.O_EXCL, 0o600);
  }
  try {
    assertPrivateFile(fd, file, WHAT);
  } finally {
    closeSync(fd);
  }
}

export interface OpenAuditFile {
  handle: FileHandle;
  /** The inode written to: when the path names another (or nothing), the file was moved away. */
  ino: number;
  size: number;
  /** The file ends inside a line (a write cut short by a full disk): the next write starts a new line. */
  needsNewline: boolean;
}

/** Whether the last byte of the file at `ino` is not a newline. */
async function endsMidLine(file: string, ino: number, size: number): Promise<boolean> {
  if (size === 0) return false;
  const h = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await h.stat();
    if (st.ino !== ino || st.size === 0) return false;
    const { buffer } = await h.read(Buffer.alloc(1), 0, 1, st.size - 1);
    return buffer[0] !== 0x0a;
  } finally {
    await h.close();
  }
}

/** Opens (creating when missing) the file for appending, with the same checks as checkAuditFile. */
export async function openAuditFile(file: string): Promise<OpenAuditFile> {
  ensurePrivateDir(dirname(file));
  checkDir(dirname(file));
  let handle: FileHandle;
  try {
    handle = await open(file, APPEND);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new Error(`${WHAT} ${file} is a symbolic link; refusing it`);
    if (code !== 'ENOENT') throw err;
    handle = await open(file, APPEND | constants.O_CREAT | constants.O_EXCL, 0o600);
  }
  try {
    assertPrivateFile(handle.fd, file, WHAT);
    const st = await handle.stat();
    return { handle, ino: st.ino, size: st.size, needsNewline: await endsMidLine(file, st.ino, st.size) };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/** True while `file` still names the inode we hold open. */
export async function stillThere(file: string, ino: number): Promise<boolean> {
  try {
    return (await lstat(file)).ino === ino;
  } catch {
    return false;
  }
}

async function unlinkQuiet(p: string): Promise<void> {
  await unlink(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** file → file.1 → … → file.keep; files numbered beyond `keep` are deleted. The caller has closed the file. */
export async function rotateAuditFiles(file: string, keep: number): Promise<void> {
  const existing = rotatedIn(file, await readdir(dirname(file)));
  for (const [n, p] of existing) if (n >= keep) await unlinkQuiet(p);
  for (const [n, p] of existing.filter(([n]) => n < keep).sort((a, b) => b[0] - a[0])) {
    await rename(p, `${file}.${n + 1}`);
  }
  await rename(file, `${file}.1`).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
