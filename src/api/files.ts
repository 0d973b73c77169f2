/**
 * Static files (recording segments, snapshots) over HTTP, confined to one
 * root. Every refusal is a bare 404, the same as a missing file, so a client
 * learns nothing about what lies outside the root, nor any server path.
 */
import { createReadStream } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, isAbsolute, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';

const contentTypes: Readonly<Record<string, string>> = {
  '.mp4': 'video/mp4',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
};

/** A byte range, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Reads a Range header against a file of `size` bytes: null when there is
 * none or it is one we ignore (malformed, another unit, several ranges; RFC
 * 9110 lets a server answer those with the whole file), 'unsatisfiable' for a
 * 416, else the range clamped to the file.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return null;
  if (first === '') {
    // Suffix: the last N bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  // last < first is a malformed spec, ignored; an open end runs to the end of the file.
  if (last !== '' && Number(last) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: 'not found' }));
}

function isInside(root: string, target: string): boolean {
  const rel = relative(root, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * The real path of `rel` under `root`, or null when it must not be served:
 * empty, NUL, absolute, a `..` segment, missing, or leading outside the root
 * through a symlink (real paths are compared, so a symlinked root still works).
 */
async function confine(root: string, rel: string): Promise<string | null> {
  if (rel === '' || rel.includes('\0') || isAbsolute(rel) || rel.split(/[/\\]/).includes('..')) return null;
  try {
    const realRoot = await realpath(root);
    const real = await realpath(join(realRoot, rel));
    return isInside(realRoot, real) ? real : null;
  } catch {
    return null;
  }
}

/**
 * Serves one file under `root` with GET/HEAD, single byte ranges (206 +
 * Content-Range; 416 when unsatisfiable), Content-Type by extension (.mp4
 * video/mp4, .jpg image/jpeg), Content-Length, Accept-Ranges: bytes,
 * Cache-Control: no-cache for .jpg. `rel` must stay inside root: '..',
 * absolute paths, NUL, and symlinks that lead out get a 404, as do folders
 * and missing files. Bodies never carry a path.
 */
export async function serveFile(req: IncomingMessage, res: ServerResponse, root: string, rel: string): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'method not allowed' }));
    return;
  }
  const real = await confine(root, rel);
  if (real === null) return notFound(res);
  // The checked path is the one opened, and the size comes from the open
  // file: a swap after the check cannot change what is sent.
  const handle = await open(real, 'r').catch(() => null);
  if (handle === null) return notFound(res);
  let streaming = false;
  try {
    const info = await handle.stat();
    if (!info.isFile()) return notFound(res);
    const size = info.size;
    const ext = extname(real).toLowerCase();
    const headers: Record<string, string | number> = {
      'content-type': contentTypes[ext] ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
      'last-modified': info.mtime.toUTCString(),
    };
    // Snapshots are rewritten in place under the same name.
    if (ext === '.jpg' || ext === '.jpeg') headers['cache-control'] = 'no-cache';

    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-length': 0 });
      res.end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    const length = end - start + 1;
    if (range !== null) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    headers['content-length'] = length;
    res.writeHead(range !== null ? 206 : 200, headers);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    streaming = true;
    // The stream owns the handle from here and closes it at the end or on abort.
    const stream = createReadStream(real, { fd: handle, start, end });
    try {
      await pipeline(stream, res);
    } catch {
      // The client went away mid-body; nothing to answer.
    }
  } finally {
    if (!streaming) await handle.close();
  }
}
