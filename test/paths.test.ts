import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VliveError, type ErrorCode } from '../src/errors.js';
import { resolveMediaPath } from '../src/media/paths.js';

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof VliveError, `expected VliveError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.field, 'path');
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

describe('resolveMediaPath', () => {
  let scratch = '';
  let root = '';

  before(async () => {
    scratch = await realpath(await mkdtemp(join(tmpdir(), 'vlive-paths-')));
    root = join(scratch, 'media');
    await mkdir(join(root, 'shows', 'deep'), { recursive: true });
    await writeFile(join(root, 'a.mp4'), 'x');
    await writeFile(join(root, 'shows', 'deep', 'b c#1.mp4'), 'x');
    await writeFile(join(scratch, 'secret.mp4'), 'x');
    await symlink(join(scratch, 'secret.mp4'), join(root, 'escape.mp4'));
    await symlink(scratch, join(root, 'up'));
    await symlink('shows/deep/b c#1.mp4', join(root, 'inside-link.mp4'));
    await symlink(join(root, 'loop'), join(root, 'loop'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('returns the real path of a file inside the root', async () => {
    assert.equal(await resolveMediaPath(root, 'a.mp4'), join(root, 'a.mp4'));
    assert.equal(await resolveMediaPath(root, './shows/deep/b c#1.mp4'), join(root, 'shows', 'deep', 'b c#1.mp4'));
    assert.equal(await resolveMediaPath(root, 'inside-link.mp4'), join(root, 'shows', 'deep', 'b c#1.mp4'));
  });

  it('works when the media root itself is reached through a symlink', async () => {
    const linkedRoot = join(scratch, 'media-link');
    await symlink(root, linkedRoot);
    assert.equal(await resolveMediaPath(linkedRoot, 'a.mp4'), join(root, 'a.mp4'));
  });

  it('rejects climbing out, absolute paths, empty and NUL', async () => {
    await rejectsWith(resolveMediaPath(root, '../x'), 'PATH_OUTSIDE_MEDIA_ROOT', /"\.\."/);
    await rejectsWith(resolveMediaPath(root, 'a/../../b'), 'PATH_OUTSIDE_MEDIA_ROOT', /"\.\."/);
    await rejectsWith(resolveMediaPath(root, 'shows/..'), 'PATH_OUTSIDE_MEDIA_ROOT');
    await rejectsWith(resolveMediaPath(root, '/etc/passwd'), 'PATH_OUTSIDE_MEDIA_ROOT', /absolute/);
    await rejectsWith(resolveMediaPath(root, ''), 'PATH_OUTSIDE_MEDIA_ROOT', /empty/);
    await rejectsWith(resolveMediaPath(root, 'a.mp4\0.txt'), 'PATH_OUTSIDE_MEDIA_ROOT', /NUL/);
  });

  it('rejects symlinks that lead outside the root', async () => {
    await rejectsWith(resolveMediaPath(root, 'escape.mp4'), 'PATH_OUTSIDE_MEDIA_ROOT', /symlink/);
    await rejectsWith(resolveMediaPath(root, 'up/secret.mp4'), 'PATH_OUTSIDE_MEDIA_ROOT', /symlink/);
  });

  it('says MEDIA_UNREADABLE for missing files, directories and loops', async () => {
    await rejectsWith(resolveMediaPath(root, 'missing.mp4'), 'MEDIA_UNREADABLE', /does not exist/);
    await rejectsWith(resolveMediaPath(root, 'a.mp4/x'), 'MEDIA_UNREADABLE');
    await rejectsWith(resolveMediaPath(root, 'shows'), 'MEDIA_UNREADABLE', /regular file/);
    await rejectsWith(resolveMediaPath(root, '.'), 'MEDIA_UNREADABLE', /regular file/);
    await rejectsWith(resolveMediaPath(root, 'loop'), 'MEDIA_UNREADABLE', /loop/);
  });

  it('limits the length and never quotes server paths', async () => {
    await rejectsWith(resolveMediaPath(root, 'a'.repeat(1025)), 'BAD_USER_INPUT', /1024/);
    await assert.rejects(resolveMediaPath(root, 'missing.mp4'), (err: Error) => !err.message.includes(scratch));
  });
});
