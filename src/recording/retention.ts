/**
 * Retention of recordings and snapshots: what the disk keeps, and nothing
 * more. Segments go by age (each channel's recordingRetainHours), then by a
 * per-channel quota, then by a quota over all channels, oldest first each
 * time. Only files that a Recording row names, inside <dataDir>/recordings/,
 * are ever deleted; a row that points anywhere else is left alone.
 *
 * In a cluster every node has its own data dir, and each row names the node
 * that holds its file (Recording.nodeName): a node sweeps its own rows only,
 * so quotas count what is on its own disk. A deleted channel's folders on the
 * other nodes go at their next sweep (sweepDeletedChannels): the rows went with
 * the channel, so the folders of channels that no longer exist are what is left.
 */
import { lstat, readdir, realpath, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { PrismaClient } from '../db/client.js';

/** Whose rows a sweep looks at: a cluster node's own (by VLIVE_NODE_NAME), or every row (null: one node, its own database). */
export interface Holder {
  nodeName: string | null;
}

export interface RetentionPolicy {
  /** Most bytes of segments one channel keeps; 0 for no quota. */
  channelQuotaBytes: number;
  /** Most bytes of segments all channels keep together; 0 for no quota. */
  totalQuotaBytes: number;
}

export type SweepReason = 'age' | 'channel-quota' | 'total-quota';

export interface SweepResult {
  /** In the order they were deleted: by reason, then oldest first. */
  deleted: { virtualLiveId: string; path: string; reason: SweepReason }[];
  /** Bytes (per the rows' sizeBytes) of the segments still listed after the sweep. */
  keptBytes: number;
  /** Rows that were due but kept: their path leads outside the recordings folder, or rm failed. */
  skipped: { virtualLiveId: string; path: string; why: string }[];
}

/** Channel ids become folder names; anything else is refused before touching the disk. */
const channelIdPattern = /^[A-Za-z0-9_-]+$/;

interface Segment {
  id: string;
  virtualLiveId: string;
  path: string;
  endMs: number;
  sizeBytes: number;
  retainHours: number;
}

function isInside(root: string, target: string): boolean {
  const rel = relative(root, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function checkPolicy(policy: RetentionPolicy): void {
  for (const key of ['channelQuotaBytes', 'totalQuotaBytes'] as const) {
    const v = policy[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new Error(`policy.${key} must be a non-negative number of bytes (0 for no quota)`);
    }
  }
}

/**
 * The absolute file of a row, or why it must not be touched. The lexical check
 * catches `..` and absolute paths; the realpath of the parent catches a
 * symlinked folder on the way (the last component may be a symlink: rm then
 * removes the link, never its target).
 */
async function segmentFile(dataDir: string, paths: { root: string; realRoot: string }, relPath: string): Promise<{ file: string } | { why: string }> {
  if (relPath.includes('\0') || isAbsolute(relPath)) return { why: 'path is absolute or contains NUL' };
  const lexical = resolve(dataDir, relPath);
  if (!isInside(paths.root, lexical)) return { why: 'path leads outside the recordings folder' };
  let parent: string;
  try {
    parent = await realpath(dirname(lexical));
  } catch (err) {
    const code = errnoCode(err);
    // No folder, no file: only the row is left to delete.
    if (code === 'ENOENT' || code === 'ENOTDIR') return { file: lexical };
    return { why: `cannot resolve the folder (${code ?? 'unknown error'})` };
  }
  if (parent !== paths.realRoot && !isInside(paths.realRoot, parent)) {
    return { why: 'path leads outside the recordings folder through a symlink' };
  }
  return { file: join(parent, basename(lexical)) };
}

/**
 * Deletes the segments that are too old or over quota: the file first (so a
 * crash in between leaves a row without a file, never a file without a row),
 * then the row. Safe to run again, and alongside a recorder adding segments.
 *
 * A channel's recordingRetainHours of 0 or less means no age limit.
 */
export async function sweepRecordings(db: PrismaClient, dataDir: string, policy: RetentionPolicy, now: Date, holder: Holder = { nodeName: null }): Promise<SweepResult> {
  checkPolicy(policy);
  const root = resolve(dataDir, 'recordings');
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    // No folder yet: rows can only name missing files; keep the lexical root.
    realRoot = root;
  }

  const rows = await db.recording.findMany({
    // A row of another node names a file on its disk, never on ours.
    ...(holder.nodeName !== null ? { where: { OR: [{ nodeName: holder.nodeName }, { nodeName: null }] } } : {}),
    select: {
      id: true,
      virtualLiveId: true,
      path: true,
      nodeName: true,
      startedAt: true,
      durationSeconds: true,
      sizeBytes: true,
      virtualLive: { select: { recordingRetainHours: true } },
    },
    orderBy: [{ startedAt: 'asc' }, { id: 'asc' }],
  });
  if (holder.nodeName !== null) await adoptUnnamed(db, dataDir, rows, holder.nodeName);
  // Oldest first throughout; the query's order is kept by every filter below.
  let live: Segment[] = rows.filter((r) => holder.nodeName === null || r.nodeName === holder.nodeName).map((r) => ({
    id: r.id,
    virtualLiveId: r.virtualLiveId,
    path: r.path,
    endMs: r.startedAt.getTime() + r.durationSeconds * 1000,
    sizeBytes: r.sizeBytes,
    retainHours: r.virtualLive.recordingRetainHours,
  }));

  const result: SweepResult = { deleted: [], keptBytes: 0, skipped: [] };
  /** Whether the segment is gone; a skipped one stays and keeps counting towards quotas. */
  const remove = async (seg: Segment, reason: SweepReason): Promise<boolean> => {
    const target = await segmentFile(dataDir, { root, realRoot }, seg.path);
    if ('why' in target) {
      result.skipped.push({ virtualLiveId: seg.virtualLiveId, path: seg.path, why: target.why });
      return false;
    }
    try {
      await rm(target.file, { force: true });
    } catch (err) {
      result.skipped.push({ virtualLiveId: seg.virtualLiveId, path: seg.path, why: `rm failed (${errnoCode(err) ?? 'unknown error'})` });
      return false;
    }
    // deleteMany: a row removed meanwhile (channel deleted, another sweep) is not an error.
    await db.recording.deleteMany({ where: { id: seg.id } });
    result.deleted.push({ virtualLiveId: seg.virtualLiveId, path: seg.path, reason });
    return true;
  };
  // A segment is skipped at most once per sweep, even if several rules want it.
  const skippedIds = new Set<string>();
  const tryRemove = async (seg: Segment, reason: SweepReason): Promise<boolean> => {
    if (skippedIds.has(seg.id)) return false;
    const gone = await remove(seg, reason);
    if (!gone) skippedIds.add(seg.id);
    return gone;
  };

  const nowMs = now.getTime();
  const afterAge: Segment[] = [];
  for (const seg of live) {
    const tooOld = seg.retainHours > 0 && nowMs - seg.endMs > seg.retainHours * 3_600_000;
    if (!(tooOld && (await tryRemove(seg, 'age')))) afterAge.push(seg);
  }
  live = afterAge;

  if (policy.channelQuotaBytes > 0) {
    const byChannel = new Map<string, Segment[]>();
    for (const seg of live) {
      const list = byChannel.get(seg.virtualLiveId);
      if (list) list.push(seg);
      else byChannel.set(seg.virtualLiveId, [seg]);
    }
    const gone = new Set<string>();
    for (const list of byChannel.values()) {
      let total = list.reduce((sum, s) => sum + s.sizeBytes, 0);
      for (const seg of list) {
        if (total <= policy.channelQuotaBytes) break;
        if (await tryRemove(seg, 'channel-quota')) {
          total -= seg.sizeBytes;
          gone.add(seg.id);
        }
      }
    }
    live = live.filter((s) => !gone.has(s.id));
  }

  if (policy.totalQuotaBytes > 0) {
    let total = live.reduce((sum, s) => sum + s.sizeBytes, 0);
    const gone = new Set<string>();
    for (const seg of live) {
      if (total <= policy.totalQuotaBytes) break;
      if (await tryRemove(seg, 'total-quota')) {
        total -= seg.sizeBytes;
        gone.add(seg.id);
      }
    }
    live = live.filter((s) => !gone.has(s.id));
  }

  result.keptBytes = live.reduce((sum, s) => sum + s.sizeBytes, 0);
  return result;
}

/**
 * Rows listed before recordings named their node (nodeName null) belong to the
 * node whose data dir has the file: that node writes its name on them, here and
 * in `rows`. A row whose file is not here is left to the node that has it.
 */
async function adoptUnnamed(db: PrismaClient, dataDir: string, rows: { id: string; path: string; nodeName: string | null }[], nodeName: string): Promise<void> {
  const root = resolve(dataDir, 'recordings');
  for (const row of rows) {
    if (row.nodeName !== null || row.path.includes('\0') || isAbsolute(row.path)) continue;
    const file = resolve(dataDir, row.path);
    if (!isInside(root, file)) continue;
    const here = await lstat(file).then(
      (info) => info.isFile(),
      () => false,
    );
    if (!here) continue;
    await db.recording.updateMany({ where: { id: row.id, nodeName: null }, data: { nodeName } });
    row.nodeName = nodeName;
  }
}

/**
 * The files of channels that no longer exist: `<dataDir>/recordings/<id>/` and
 * `<dataDir>/snapshots/<id>.jpg`. Deleting a channel removes its rows and this
 * node's files at once; the other nodes that hold some of its files find them
 * here, at their next sweep (or their next start, for a node that was down).
 * The folders are listed before the channels are read, so a channel created
 * meanwhile is never taken for a deleted one. Returns the channel ids swept.
 */
export async function sweepDeletedChannels(db: PrismaClient, dataDir: string): Promise<string[]> {
  const recordings = resolve(dataDir, 'recordings');
  const snapshots = resolve(dataDir, 'snapshots');
  const list = (dir: string): Promise<string[]> =>
    readdir(dir).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    });
  const folders = (await list(recordings)).filter((n) => channelIdPattern.test(n));
  const snaps = (await list(snapshots)).filter((n) => n.endsWith('.jpg') && channelIdPattern.test(n.slice(0, -4)));
  const ids = [...new Set([...folders, ...snaps.map((n) => n.slice(0, -4))])];
  if (ids.length === 0) return [];
  const existing = new Set((await db.virtualLive.findMany({ where: { id: { in: ids } }, select: { id: true } })).map((r) => r.id));
  const gone = ids.filter((id) => !existing.has(id)).sort();
  for (const id of gone) {
    await removeChannelRecordings(dataDir, id);
    await rm(join(snapshots, `${id}.jpg`), { force: true });
  }
  return gone;
}

/**
 * Deletes the `*.jpg` files directly in `dir` whose mtime is more than
 * `maxAgeSeconds` before `now`, and returns their names (sorted). Folders,
 * symlinks and other names are left alone; a missing `dir` holds nothing.
 */
export async function sweepSnapshots(dir: string, maxAgeSeconds: number, now: Date): Promise<string[]> {
  if (!Number.isFinite(maxAgeSeconds) || maxAgeSeconds < 0) throw new Error('maxAgeSeconds must be a non-negative number');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const cutoffMs = now.getTime() - maxAgeSeconds * 1000;
  const deleted: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.jpg')).sort()) {
    const file = join(dir, name);
    // A snapshot may be replaced or removed while we look: a vanished file is not an error.
    const info = await lstat(file).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    });
    if (info === null || !info.isFile() || info.mtimeMs >= cutoffMs) continue;
    await rm(file, { force: true });
    deleted.push(name);
  }
  return deleted;
}

/** Deletes `<dataDir>/recordings/<channelId>` and all in it (the rows go with the channel's cascade). */
export async function removeChannelRecordings(dataDir: string, channelId: string): Promise<void> {
  if (!channelIdPattern.test(channelId)) throw new Error('channelId must match /^[A-Za-z0-9_-]+$/');
  // rm does not follow a symlink: if the folder is one, only the link goes.
  await rm(join(resolve(dataDir, 'recordings'), channelId), { recursive: true, force: true });
}
