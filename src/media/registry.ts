/**
 * VOD resources: a file under the media root, confined and probed before it
 * is accepted. The worker muxes FLV itself from MP4/MOV files with H.264
 * and/or AAC/MP3 tracks; the registry reads such a file's sample index once
 * here, so a file the worker could not play is refused now, not at start.
 */
import { stat } from 'node:fs/promises';
import type { PrismaClient, VodResource } from '../generated/prisma-sqlite/client.js';
import { VliveError } from '../errors.js';
import { checkName } from '../channels/input.js';
import { resolveMediaPath } from './paths.js';
import { Mp4Error, readMp4, trackSeconds } from './mp4.js';
import { probeMedia } from './probe.js';

export class VodRegistry {
  constructor(
    private readonly db: PrismaClient,
    private readonly mediaRoot: string,
  ) {}

  list(): Promise<VodResource[]> {
    return this.db.vodResource.findMany({ orderBy: { createdAt: 'asc' } });
  }

  get(id: string): Promise<VodResource | null> {
    return this.db.vodResource.findUnique({ where: { id } });
  }

  async register(input: { name: string; path: string }): Promise<VodResource> {
    const name = checkName(input.name);
    const abs = await resolveMediaPath(this.mediaRoot, input.path);
    const probe = await probeMedia(abs);
    const codecs = [probe.video?.codec, probe.audio?.codec].filter((c) => c != null).join(' + ');
    if (!probe.copyable || probe.container !== 'mp4') {
      throw new VliveError(
        'MEDIA_UNSUPPORTED',
        `${input.path} holds ${codecs || 'no audio or video'} in ${probe.container ?? 'no container'}; only MP4/MOV files with H.264 video and AAC or MP3 audio can be published without transcoding`,
      );
    }
    const tracks = await mp4Tracks(abs, input.path);
    const { size } = await stat(abs);
    return this.db.vodResource.create({
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
        videoDurationSeconds: tracks.videoSeconds,
        audioDurationSeconds: tracks.audioSeconds,
        copyable: probe.copyable,
      },
    });
  }
}

/** Per-track play lengths from the MP4 index, which the worker will read the same way. */
async function mp4Tracks(abs: string, shown: string): Promise<{ videoSeconds: number | null; audioSeconds: number | null }> {
  try {
    const file = await readMp4(abs);
    const video = file.tracks.find((t) => t.kind === 'video' && t.codec === 'h264');
    const audio = file.tracks.find((t) => t.kind === 'audio' && (t.codec === 'aac' || t.codec === 'mp3'));
    if (video === undefined && audio === undefined) throw new Mp4Error('no H.264, AAC or MP3 track');
    return { videoSeconds: video ? trackSeconds(video) : null, audioSeconds: audio ? trackSeconds(audio) : null };
  } catch (err) {
    if (err instanceof Mp4Error) throw new VliveError('MEDIA_UNSUPPORTED', `${shown}: ${err.message}`);
    throw err;
  }
}
