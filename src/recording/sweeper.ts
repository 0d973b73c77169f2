/**
 * Runs the retention sweeps on a timer: recordings by age (each channel's
 * retainHours) and by the per-channel and total quotas, snapshot files not
 * refreshed for snapshotRetainSeconds, the files of deleted channels, and
 * the rendition files of deleted VOD resources (src/vods/conform.ts).
 * One sweep at a time; a failed sweep is logged and the next one tries again.
 */
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { PrismaClient } from '../generated/prisma-sqlite/client.js';
import type { Logger } from '../log.js';
import { sweepOrphanRenditions } from '../vods/conform.js';
import { sweepDeletedChannels, sweepRecordings, sweepSnapshots, type Holder } from './retention.js';

type RetentionConfig = Pick<Config, 'dataDir' | 'recordingChannelQuotaBytes' | 'recordingTotalQuotaBytes' | 'snapshotRetainSeconds' | 'retentionSweepSeconds'>;

/**
 * @param holder in a cluster, this node's name: it sweeps only the recordings its
 *   data dir holds. Null on a single node, whose database lists only its own.
 */
export function startRetention(db: PrismaClient, config: RetentionConfig, holder: Holder, log: Logger): { sweep: () => Promise<void>; stop: () => Promise<void> } {
  let running: Promise<void> | null = null;
  const sweep = (): Promise<void> => {
    running ??= (async () => {
      try {
        const now = new Date();
        const r = await sweepRecordings(db, config.dataDir, { channelQuotaBytes: config.recordingChannelQuotaBytes, totalQuotaBytes: config.recordingTotalQuotaBytes }, now, holder);
        if (r.deleted.length > 0) log.info('recordings deleted', { count: r.deleted.length, reasons: [...new Set(r.deleted.map((d) => d.reason))] });
        for (const s of r.skipped) log.warn('recording kept: refused or undeletable', { channel: s.virtualLiveId, why: s.why });
        const snaps = await sweepSnapshots(join(config.dataDir, 'snapshots'), config.snapshotRetainSeconds, now);
        if (snaps.length > 0) log.info('old snapshots deleted', { count: snaps.length });
        const deleted = await sweepDeletedChannels(db, config.dataDir);
        if (deleted.length > 0) log.info('files of deleted channels removed', { channels: deleted });
        const renditions = await sweepOrphanRenditions(db, config.dataDir);
        if (renditions.length > 0) log.info('rendition files of deleted VOD resources removed', { renditions });
      } catch (err) {
        log.warn('retention sweep failed', { err: String(err) });
      }
    })().finally(() => (running = null));
    return running;
  };
  const timer = setInterval(() => void sweep(), config.retentionSweepSeconds * 1000);
  timer.unref();
  return {
    sweep,
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
