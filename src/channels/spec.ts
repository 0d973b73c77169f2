/**
 * Step (b) of a start: the seed's ChannelInfo becomes a PipelineSpec, the
 * only thing a worker gets. Paths are confined and URLs checked again here,
 * because the file or the rules may have changed since the record was saved.
 */
import { VliveError } from '../errors.js';
import { resolveMediaPath } from '../media/paths.js';
import { parsePushTarget, parseSourceUrl } from '../media/urls.js';
import type { PipelineSpec, VodItem } from '../pool/ipc.js';
import type { PublishPoint } from './ports.js';
import { playlistOf, type ChannelRecord } from './repository.js';

/** A VOD channel's items with their confined absolute paths. */
export async function vodItems(rec: ChannelRecord, mediaRoot: string): Promise<VodItem[]> {
  const items = playlistOf(rec);
  if (items.length === 0) throw new VliveError('INVALID_STATE', `virtual live ${rec.id} has no VOD resource`);
  return Promise.all(items.map(async (v) => ({ id: v.id, path: await resolveMediaPath(mediaRoot, v.path) })));
}

export async function buildPipelineSpec(rec: ChannelRecord, mediaRoot: string, origin: PublishPoint): Promise<PipelineSpec> {
  // Checked, then used exactly as given: a stream key must reach the server unaltered.
  for (const t of rec.pushTargets) parsePushTarget(t.url);
  const targets = [origin.publishUrl(rec.id), ...rec.pushTargets.map((t) => t.url)];
  if (rec.sourceType === 'VOD') {
    return { channelId: rec.id, source: { kind: 'vod', items: await vodItems(rec, mediaRoot), loop: rec.loop }, targets };
  }
  if (rec.sourceUrl === null) throw new VliveError('INVALID_STATE', `virtual live ${rec.id} has no source URL`);
  parseSourceUrl(rec.sourceUrl);
  return {
    channelId: rec.id,
    source: { kind: 'rtmp', url: rec.sourceUrl, connectTimeoutMs: rec.connectTimeoutMs },
    targets,
  };
}
