/**
 * VOD resources: a file under the media root, confined and probed before it
 * is accepted. Until transcoding lands (issue: seamless loops), only media
 * that copies into FLV as it is can be registered.
 */
import { stat } from 'node:fs/promises';
import type { PrismaClient, VodResource } from '../generated/prisma-sqlite/client.js';
import { VliveError } from '../errors.js';
import { checkName } from '../channels/input.js';
import { resolveMediaPath } from './paths.js';
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
    if (!probe.copyable) {
      const codecs = [probe.video?.codec, probe.audio?.codec].filter((c) => c != null).join(' + ');
      throw new VliveError(
        'MEDIA_UNSUPPORTED',
        `${input.path} holds ${codecs || 'no audio or video'}; only H.264 video with AAC or MP3 audio can be published without transcoding`,
      );
    }
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
        copyable: probe.copyable,
      },
    });
  }
}
