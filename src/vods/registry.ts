/**
 * VOD resources: a file under the media root, confined and probed before it
 * is accepted. The worker muxes FLV itself from MP4/MOV files with H.264
 * and/or AAC/MP3 tracks; the registry reads such a file's sample index once
 * here. Other media is transcoded once (preparer.ts); a file GStreamer cannot
 * read at all is refused (MEDIA_UNREADABLE / MEDIA_UNSUPPORTED from the probe).
 *
 * src/vods/ is the VOD library: this registry, the preparer and the
 * one-time transcoder. It may import media/ (probing, the MP4 reader, path
 * confinement), gst/ (the transcoder process), names.ts, errors, db and log;
 * the channels read VOD rows through their own repository, not through this.
 */
import { stat } from 'node:fs/promises';
import type { PrismaClient, VodResource, VodRendition } from '../generated/prisma-sqlite/client.js';
import type { Conformer } from './conform.js';
import { badInput } from '../errors.js';
import { checkName } from '../names.js';
import { resolveMediaPath } from '../media/paths.js';
import { Mp4Error, readMp4, trackSeconds } from '../media/mp4.js';
import type { MediaPreparer } from './preparer.js';
import { probeMedia } from '../media/probe.js';
import { defaultProfile, validateProfile, type TranscodeProfile } from './transcode.js';

/** Optional transcode settings at registration; any field left out takes the default. */
export type TranscodeInput = Partial<TranscodeProfile>;

export class VodRegistry {
  constructor(
    private readonly db: PrismaClient,
    private readonly mediaRoot: string,
    private readonly preparer: MediaPreparer,
    private readonly conformer: Pick<Conformer, 'renditionsOf'> | null = null,
  ) {}

  /** A resource's renditions for channels' output profiles, oldest first. */
  renditions(id: string): Promise<VodRendition[]> {
    return this.conformer?.renditionsOf(id) ?? Promise.resolve([]);
  }

  list(): Promise<VodResource[]> {
    return this.db.vodResource.findMany({ orderBy: { createdAt: 'asc' } });
  }

  get(id: string): Promise<VodResource | null> {
    return this.db.vodResource.findUnique({ where: { id } });
  }

  /**
   * Probes and registers a file. Media the worker can mux as it is (MP4/MOV,
   * H.264 and/or AAC/MP3) is READY at once; anything else GStreamer can
   * decode, or any file registered with a transcode profile, is registered
   * PREPARING and transcoded once in the background (MediaPreparer).
   */
  async register(input: { name: string; path: string; transcode?: TranscodeInput | null }): Promise<VodResource> {
    const name = checkName(input.name);
    const profile = input.transcode == null ? null : checkProfile(input.transcode);
    const abs = await resolveMediaPath(this.mediaRoot, input.path);
    const probe = await probeMedia(abs);
    const { size } = await stat(abs);
    const direct = profile === null && probe.copyable && probe.container === 'mp4' ? await mp4Tracks(abs) : null;
    const vod = await this.db.vodResource.create({
      data: {
        name,
        path: input.path,
        sizeBytes: size,
        container: probe.container ?? 'unknown',
        durationSeconds: probe.durationSeconds ?? 0,
        videoCodec: probe.video?.codec ?? null,
        videoProfile: probe.video?.profile ?? null,
        width: probe.video?.width ?? null,
        height: probe.video?.height ?? null,
        frameRate: probe.video?.frameRate ?? null,
        audioCodec: probe.audio?.codec ?? null,
        audioSampleRate: probe.audio?.sampleRate ?? null,
        audioChannels: probe.audio?.channels ?? null,
        videoDurationSeconds: direct?.videoSeconds ?? null,
        audioDurationSeconds: direct?.audioSeconds ?? null,
        copyable: probe.copyable,
        state: direct === null ? 'PREPARING' : 'READY',
        prepareProgress: direct === null ? 0 : 1,
        transcodeProfile: profile === null ? null : JSON.stringify(profile),
      },
    });
    if (direct === null) this.preparer.enqueue(vod.id);
    return vod;
  }
}

function checkProfile(input: TranscodeInput): TranscodeProfile {
  const profile = { ...defaultProfile, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v != null)) } as TranscodeProfile;
  try {
    validateProfile(profile);
  } catch (err) {
    throw badInput('transcode', (err as Error).message.replace(/^profile\./, ''));
  }
  return profile;
}

/**
 * Per-track play lengths from the MP4 index, which the worker will read the
 * same way; null when the index is one the worker would refuse (the file is
 * then transcoded instead).
 */
async function mp4Tracks(abs: string): Promise<{ videoSeconds: number | null; audioSeconds: number | null } | null> {
  try {
    const file = await readMp4(abs);
    const video = file.tracks.find((t) => t.kind === 'video' && t.codec === 'h264' && t.config !== null);
    const audio = file.tracks.find((t) => t.kind === 'audio' && (t.codec === 'mp3' || (t.codec === 'aac' && t.config !== null)));
    if (video === undefined && audio === undefined) return null;
    return { videoSeconds: video ? trackSeconds(video) : null, audioSeconds: audio ? trackSeconds(audio) : null };
  } catch (err) {
    if (err instanceof Mp4Error) return null;
    throw err;
  }
}
