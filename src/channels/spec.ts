/**
 * Step (b) of a start: the seed's ChannelInfo becomes a PipelineSpec, the
 * only thing a worker gets. Paths are confined and URLs checked again here,
 * because the file or the rules may have changed since the record was saved.
 */
import { join } from 'node:path';
import { VliveError } from '../errors.js';
import { resolveMediaPath } from '../media/paths.js';
import { liveProtocolOf, parsePushTarget, parseSourceUrl } from '../media/urls.js';
import type { LiveItemSpec, LiveSource, PipelineSpec, SourceLabel, TapSpec, VodItem } from '../pool/pipeline-spec.js';
import type { PublishPoint } from './ports.js';
import { parseProfileKey, type OutputProfile } from '../media/output-profile.js';
import { checkConformed, renditionPath } from './conform.js';
import { breaksOf, playlistOf, type ChannelRecord, type ChannelVod } from './repository.js';
import { breaksSpec, type StoredBreak } from './ad-breaks.js';

/** Where media lives: registered files under mediaRoot, transcoded ones under dataDir. */
export interface MediaPaths {
  readonly mediaRoot: string;
  readonly dataDir: string;
}

/**
 * A VOD channel's items with their absolute paths: the prepared file when
 * there is one, else the confined original; under an output profile, the
 * READY rendition of an item that does not fit it (MEDIA_NOT_READY naming
 * every item still conforming). With a slate, an item whose
 * file is gone is marked missing (the slate plays in its place) instead of
 * failing the start; nothing of its path reaches the worker.
 */
export async function vodItems(rec: ChannelRecord, paths: MediaPaths): Promise<VodItem[]> {
  const items = playlistOf(rec);
  if (items.length === 0) throw new VliveError('INVALID_STATE', `virtual live ${rec.id} has no VOD resource`);
  const profile = parseProfileKey(rec.outputProfile);
  if (profile !== null) checkConformed(rec.slateVodResource === null ? items : [...items, rec.slateVodResource], profile, `virtual live ${rec.id}`);
  const breaks = breaksOf(rec);
  const out = await Promise.all(
    items.map((v, i) =>
      vodItem(v, paths, profile, breaks[i] ?? []).catch((err: unknown) => {
        if (rec.slateVodResource !== null && err instanceof VliveError && err.code === 'MEDIA_UNREADABLE') return { id: v.id, path: '', missing: true };
        throw err;
      }),
    ),
  );
  if (out.every((i) => i.missing === true)) throw new VliveError('MEDIA_UNREADABLE', `every item of virtual live ${rec.id} is missing`);
  return out;
}

/** Names of the items vodItems() marked missing, for the channel's warnings. */
export function missingItemNames(rec: ChannelRecord, items: readonly VodItem[]): string[] {
  const byId = new Map(playlistOf(rec).map((v) => [v.id, v.name]));
  return items.filter((i) => i.missing === true).map((i) => byId.get(i.id) ?? i.id);
}

/** One READY VOD resource with its absolute path (MEDIA_NOT_READY otherwise); under a profile, its rendition when it has one READY. */
async function vodItem(v: ChannelVod, paths: MediaPaths, profile: OutputProfile | null, breaks: readonly StoredBreak[] = []): Promise<VodItem> {
  const cues = breaks.length > 0 ? { breaks: breaksSpec(breaks) } : {};
  const rendition = profile !== null ? renditionPath(v, profile, paths.dataDir) : null;
  if (rendition !== null) return { id: v.id, path: rendition, ...cues };
  if (v.state !== 'READY') {
    const why = v.state === 'FAILED' ? `could not be transcoded: ${v.prepareError ?? 'unknown error'}` : `is still being transcoded (${Math.round(v.prepareProgress * 100)} %)`;
    throw new VliveError('MEDIA_NOT_READY', `VOD resource "${v.name}" ${why}`);
  }
  const path = v.preparedPath !== null ? join(paths.dataDir, v.preparedPath) : await resolveMediaPath(paths.mediaRoot, v.path);
  return { id: v.id, path, ...cues };
}

/** A channel's slate as a worker plays it (a VOD channel's cut-in fills with it while its source is away). */
export const slateItem = (v: ChannelVod, paths: MediaPaths, profileKey: string | null): Promise<VodItem> => vodItem(v, paths, parseProfileKey(profileKey));

/** Where a channel's recordings and its snapshot live under the data dir. */
export const recordingsDir = (dataDir: string, channelId: string): string => join(dataDir, 'recordings', channelId);
export const snapshotFile = (dataDir: string, channelId: string): string => join(dataDir, 'snapshots', `${channelId}.jpg`);

/** The tap of a channel with recording or snapshots on, reading `readFrom`; undefined otherwise. */
function tapSpec(rec: ChannelRecord, dataDir: string, readFrom: string): TapSpec | undefined {
  if (!rec.recordingEnabled && !rec.snapshotEnabled) return undefined;
  // A relay is H.264 + AAC (pipelines/source-rtmp-av.gst); a VOD channel has its first item's tracks.
  const first = rec.sourceType === 'VOD' ? playlistOf(rec)[0] : undefined;
  return {
    url: readFrom,
    hasVideo: first === undefined || first.videoCodec !== null,
    hasAudio: first === undefined || first.audioCodec !== null,
    recording: rec.recordingEnabled ? { dir: recordingsDir(dataDir, rec.id), segmentSeconds: rec.recordingSegmentSeconds } : null,
    snapshot: rec.snapshotEnabled ? { file: snapshotFile(dataDir, rec.id), intervalSeconds: rec.snapshotIntervalSeconds } : null,
  };
}

/** An ONLINE channel's primary or backup source, as the worker pulls it. */
export function liveSourceOf(rec: ChannelRecord, label: SourceLabel): LiveSource {
  const url = label === 'backup' ? rec.backupUrl : rec.sourceUrl;
  if (url === null) throw new VliveError('INVALID_STATE', `virtual live ${rec.id} has no ${label === 'backup' ? 'backup' : 'source'} URL`);
  return pullOf(rec, url, label === 'backup' ? 'backupUrl' : 'sourceUrl', label);
}

/** How the worker pulls `url` with the channel's settings (a relay's source, a cut-in, a live item). */
export function pullOf(rec: ChannelRecord, url: string, field: string, label: SourceLabel = 'primary'): LiveSource {
  return {
    label,
    protocol: liveProtocolOf(parseSourceUrl(url, field)),
    url,
    connectTimeoutMs: rec.connectTimeoutMs,
    rtspTransport: rec.rtspTransport === 'UDP' ? 'udp' : 'tcp',
    transcode: rec.liveTranscode === 'ALWAYS' ? 'always' : rec.liveTranscode === 'NEVER' ? 'never' : 'auto',
  };
}

export async function buildPipelineSpec(rec: ChannelRecord, paths: MediaPaths, origin: PublishPoint, label: SourceLabel = 'primary'): Promise<PipelineSpec> {
  // Checked, then used exactly as given: a stream key must reach the server unaltered.
  for (const t of rec.pushTargets) parsePushTarget(t.url);
  const targets = [origin.publishUrl(rec.id, rec.hls), ...rec.pushTargets.map((t) => t.url)];
  // The tap reads the channel back from the origin, from the application it
  // publishes to, which its hls choice picks.
  const tap = tapSpec(rec, paths.dataDir, origin.playUrls(rec.id, rec.hls).rtmp);
  const readers = tap === undefined ? {} : { tap };
  const slate = rec.slateVodResource === null ? {} : { slate: await slateItem(rec.slateVodResource, paths, rec.outputProfile) };
  if (rec.sourceType === 'VOD') {
    // A programme (issue #22 item 1) plays its items round and round and its live-source entries in its slots, not the playlist's live items; its worker gets it once LIVING.
    const live: LiveItemSpec[] = (rec.programme !== null ? [] : rec.liveItems).map((l) => ({ id: l.id, index: l.position, source: pullOf(rec, l.sourceUrl, 'items'), durationMs: Math.round(l.durationSeconds * 1000) }));
    const withLive = live.length === 0 ? {} : { live };
    return { channelId: rec.id, source: { kind: 'vod', items: await vodItems(rec, paths), loop: rec.loop || rec.programme !== null, ...withLive }, targets, ...readers, ...slate };
  }
  return { channelId: rec.id, source: { kind: 'live', ...liveSourceOf(rec, label) }, targets, ...readers, ...slate };
}
