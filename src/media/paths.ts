/**
 * The confinement rule for VOD paths: a client names a file relative to the
 * media root and may never reach anything outside it, whether by an absolute
 * path, by `..`, or through a symlink. Messages quote the client's relative
 * path only, never the server's absolute paths.
 */
import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { VliveError } from '../errors.js';

/** Longest relative path accepted, in characters. */
export const MAX_MEDIA_PATH_LENGTH = 1024;

const FIELD = 'path';

const outside = (relPath: string, why: string): VliveError =>
  new VliveError('PATH_OUTSIDE_MEDIA_ROOT', `path ${JSON.stringify(relPath)} ${why}`, FIELD);

const unreadable = (relPath: string, why: string): VliveError =>
  new VliveError('MEDIA_UNREADABLE', `path ${JSON.stringify(relPath)} ${why}`, FIELD);

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Reasons a syntactically fine path is refused before touching the disk. */
function lexicalProblem(relPath: string): string | null {
  if (relPath.length === 0) return 'is empty; name a file relative to the media root';
  if (relPath.includes('\0')) return 'contains a NUL byte';
  if (isAbsolute(relPath)) return 'is absolute; name a file relative to the media root';
  if (relPath.split('/').includes('..')) return 'contains a ".." segment';
  return null;
}

/**
 * Resolves `relPath` inside `mediaRoot` and returns the real absolute path
 * of the file (symlinks resolved), which is what pipelines must open: the
 * check and the use then name the same file.
 *
 * @throws VliveError BAD_USER_INPUT when longer than {@link MAX_MEDIA_PATH_LENGTH};
 *   PATH_OUTSIDE_MEDIA_ROOT when empty, with a NUL byte, absolute, with a `..`
 *   segment, or leading outside the root through a symlink; MEDIA_UNREADABLE
 *   when missing, unreadable or not a regular file.
 */
export async function resolveMediaPath(mediaRoot: string, relPath: string): Promise<string> {
  if (typeof relPath !== 'string') throw new VliveError('BAD_USER_INPUT', 'path: must be a string', FIELD);
  if (relPath.length > MAX_MEDIA_PATH_LENGTH) {
    throw new VliveError('BAD_USER_INPUT', `path: longer than ${MAX_MEDIA_PATH_LENGTH} characters`, FIELD);
  }
  const problem = lexicalProblem(relPath);
  if (problem !== null) throw outside(relPath, problem);

  // The root itself may be a symlink (e.g. /srv/media -> /mnt/disk1);
  // compare real paths on both sides. A missing root is the operator's fault,
  // not the client's, so it stays a plain Error.
  const root = await realpath(mediaRoot);

  let real: string;
  try {
    real = await realpath(join(root, relPath));
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw unreadable(relPath, 'does not exist in the media root');
    if (code === 'EACCES') throw unreadable(relPath, 'is not readable by the service');
    if (code === 'ELOOP') throw unreadable(relPath, 'is a symlink loop');
    throw unreadable(relPath, `cannot be resolved (${code ?? 'unknown error'})`);
  }

  const rel = relative(root, real);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw outside(relPath, 'leads outside the media root through a symlink');
  }

  const info = await stat(real).catch(() => null);
  if (info === null || !info.isFile()) throw unreadable(relPath, 'is not a regular file');
  try {
    await access(real, constants.R_OK);
  } catch {
    throw unreadable(relPath, 'is not readable by the service');
  }
  return real;
}
