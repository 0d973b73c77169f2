/**
 * Renditions of VOD resources for channels' output profiles (issue #21 item
 * 5): a file that does not fit a profile gets one VodRendition row per
 * (file, profile), made CONFORMING and queued on the preparer at low
 * priority (conform-job.ts does the work). Every channel with that profile
 * reuses it: the row's unique key is what makes "once".
 *
 * A FAILED rendition stays failed (like a failed prepare): asking again does
 * not transcode again; the channel's start names the error.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrismaClient, VodResource, VodRendition } from '../generated/prisma-sqlite/client.js';
import { fitsProfile, profileKey, type OutputProfile } from '../media/output-profile.js';
import type { MediaPreparer } from './preparer.js';

export class Conformer {
  constructor(
    private readonly db: PrismaClient,
    private readonly preparer: Pick<MediaPreparer, 'enqueueConform'>,
  ) {}

  /** Makes sure each file that does not fit `profile` has its rendition, made or on its way. */
  async ensure(vods: readonly VodResource[], profile: OutputProfile): Promise<void> {
    const key = profileKey(profile);
    const seen = new Set<string>();
    for (const v of vods) {
      if (seen.has(v.id) || fitsProfile(v, profile)) continue;
      seen.add(v.id);
      const where = { vodResourceId_profileKey: { vodResourceId: v.id, profileKey: key } };
      if ((await this.db.vodRendition.findUnique({ where, select: { id: true } })) !== null) continue;
      try {
        const row = await this.db.vodRendition.create({ data: { vodResourceId: v.id, profileKey: key } });
        this.preparer.enqueueConform(row.id);
      } catch (err) {
        // Two channels asking at once: the unique key lets one row in, and only its creator queues it.
        if ((err as { code?: unknown }).code !== 'P2002') throw err;
      }
    }
  }

  /** A resource's renditions, oldest first. */
  renditionsOf(vodResourceId: string): Promise<VodRendition[]> {
    return this.db.vodRendition.findMany({ where: { vodResourceId }, orderBy: { createdAt: 'asc' } });
  }
}

const renditionFile = /^([A-Za-z0-9_-]+)\.mp4$/;

/**
 * Removes `<dataDir>/renditions/<id>.mp4` files whose rendition row is gone
 * (it goes with its VOD resource, ON DELETE CASCADE); run by the retention
 * sweeper. The files are listed before the rows are read, and a row exists
 * before its job writes a file, so a rendition being made is never taken for
 * a gone one; `.part` files are the running job's. Returns the ids removed.
 */
export async function sweepOrphanRenditions(db: PrismaClient, dataDir: string): Promise<string[]> {
  const dir = join(dataDir, 'renditions');
  const names = await readdir(dir).catch((err: unknown) => {
    if ((err as { code?: unknown }).code === 'ENOENT') return [];
    throw err;
  });
  const ids = names.flatMap((n) => renditionFile.exec(n)?.[1] ?? []);
  if (ids.length === 0) return [];
  const existing = new Set((await db.vodRendition.findMany({ where: { id: { in: ids } }, select: { id: true } })).map((r) => r.id));
  const gone = ids.filter((id) => !existing.has(id)).sort();
  for (const id of gone) await rm(join(dir, `${id}.mp4`), { force: true });
  return gone;
}
