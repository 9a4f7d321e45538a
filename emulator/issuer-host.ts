// Serves a directory read-only, the way a static bucket would serve an OIDC issuer: GET/HEAD of regular
// files, no listings, no writes. The request path is raw (node does not normalise it), so every segment
// is decoded and vetted by hand; a path that tries to leave the directory is refused before the file
// system is touched, and the resolved real path is checked again so a symlink cannot lead out either.

import { open, realpath, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, extname, isAbsolute, join, relative, sep } from 'node:path';
import { EmulatorConfigError } from './iam.js';

export const ISSUER_PREFIX = '/oidc';

/** Issuer documents are small; anything larger is not what this host is for. */
const MAX_FILE_BYTES = 1024 * 1024;

export interface IssuerHost {
  /** Handles a request whose path is ISSUER_PREFIX or below it. */
  handle(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void>;
}

/** Resolves the served directory once, so later checks compare against its real path. */
export async function resolveIssuerDir(dir: string): Promise<string> {
  try {
    const real = await realpath(dir);
    if ((await stat(real)).isDirectory()) return real;
  } catch {
    // fall through to the error below
  }
  throw new EmulatorConfigError('InvalidIssuerDir', `issuerDir is not a readable directory: ${dir}`);
}

function contentType(file: string): string {
  // The discovery document has no extension but is JSON; clients check for application/json.
  if (extname(file) === '.json' || basename(file) === 'openid-configuration') return 'application/json';
  if (extname(file) === '.pem') return 'application/x-pem-file';
  return 'application/octet-stream';
}

function reply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

type Segments = { ok: true; segments: string[] } | { ok: false; status: 400 | 404 };

/** Splits the path below the prefix into decoded names, refusing anything that is not a plain name. */
function splitPath(rest: string): Segments {
  if (rest === '' || rest.endsWith('/')) return { ok: false, status: 404 }; // a directory: never listed
  const segments: string[] = [];
  for (const raw of rest.split('/')) {
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return { ok: false, status: 400 };
    }
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) return { ok: false, status: 400 };
    segments.push(name);
  }
  return { ok: true, segments };
}

export function createIssuerHost(root: string | undefined): IssuerHost {
  return {
    async handle(req, res, rawPath) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        reply(res, 405, 'Method Not Allowed\n', { allow: 'GET, HEAD' });
        return;
      }
      if (root === undefined) {
        reply(res, 404, 'Not Found\n');
        return;
      }
      const rest = rawPath === ISSUER_PREFIX ? '' : rawPath.slice(ISSUER_PREFIX.length + 1);
      const split = splitPath(rest);
      if (!split.ok) {
        reply(res, split.status, split.status === 400 ? 'Bad Request\n' : 'Not Found\n');
        return;
      }
      const file = await servedFile(root, join(root, ...split.segments));
      if (file === undefined) {
        reply(res, 404, 'Not Found\n');
        return;
      }
      res.writeHead(200, {
        'content-type': contentType(file.path),
        'content-length': file.body.byteLength,
        // Tests rewrite these documents (key rotation, revocation); a cached copy would hide that.
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : file.body);
    },
  };
}

function inside(root: string, candidate: string): boolean {
  const rel = relative(root, candidate);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The bytes of a regular file inside root, or undefined for anything else (missing, directory, escape). */
async function servedFile(root: string, candidate: string): Promise<{ path: string; body: Buffer } | undefined> {
  if (!inside(root, candidate)) return undefined;
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    return undefined;
  }
  if (!inside(root, real)) return undefined;
  let handle: FileHandle;
  try {
    handle = await open(real, 'r');
  } catch {
    return undefined;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > MAX_FILE_BYTES) return undefined;
    // Typed by the requested name: a symlinked document keeps the content type its URL implies.
    return { path: candidate, body: await handle.readFile() };
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}
