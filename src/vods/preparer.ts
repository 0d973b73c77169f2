/**
 * Prepares VOD resources that the worker cannot mux as they are (another
 * codec, another container, or an operator-chosen transcode profile): one
 * transcode per resource, once, into `<dataDir>/prepared/<id>.mp4`, at the
 * lowest CPU priority, one job at a time. Transcoding a file once instead of
 * in every channel, live, keeps a channel's cost a copy's cost however many
 * channels loop it.
 *
 * The resource is PREPARING meanwhile (progress in the API), then READY with
 * the prepared file's own shape (H.264 + AAC, its size and track lengths), or
 * FAILED with the reason. Jobs of resources left PREPARING by a stop of the
 * service start again at its next start.
 *
 * The same queue makes the renditions of channels' output profiles
 * (conform.ts), at a lower priority: a prepare job always goes first, so a
 * file registered now is not kept waiting behind a playlist's conforms.
 *
 * Imports transcode.ts and media/ (the MP4 reader, path confinement); see
 * registry.ts for the folder's floor.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrismaClient } from '../generated/prisma-sqlite/client.js';
import type { Logger } from '../log.js';
import { readMp4, trackSeconds } from '../media/mp4.js';
import { resolveMediaPath } from '../media/paths.js';
import { conformRendition } from './conform-job.js';
import { defaultProfile, throttledProgress, transcode, validateProfile, type TranscodeProfile } from './transcode.js';

/** How often progress is written to the database while a job runs. */
const progressWriteMs = 2000;

export function profileOf(json: string | null): TranscodeProfile {
  if (json === null) return defaultProfile;
  const p = { ...defaultProfile, ...(JSON.parse(json) as Partial<TranscodeProfile>) };
  validateProfile(p);
  return p;
}

export class MediaPreparer {
  readonly #queue: string[] = [];
  /** VodRendition ids: taken only when #queue is empty. */
  readonly #conforms: string[] = [];
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(
    private readonly db: PrismaClient,
    private readonly paths: { mediaRoot: string; dataDir: string },
    private readonly log: Logger,
  ) {}

  /** Queues every resource a previous run left PREPARING. */
  async resumePending(): Promise<void> {
    const pending = await this.db.vodResource.findMany({ where: { state: 'PREPARING' }, select: { id: true } });
    for (const { id } of pending) this.enqueue(id);
    const conforming = await this.db.vodRendition.findMany({ where: { state: 'CONFORMING' }, select: { id: true }, orderBy: { createdAt: 'asc' } });
    for (const { id } of conforming) this.enqueueConform(id);
  }

  enqueue(id: string): void {
    if (this.#closed || this.#queue.includes(id)) return;
    this.#queue.push(id);
    this.#kick();
  }

  /** Queues a rendition (conform.ts made its row CONFORMING), behind every prepare job. */
  enqueueConform(renditionId: string): void {
    if (this.#closed || this.#conforms.includes(renditionId)) return;
    this.#conforms.push(renditionId);
    this.#kick();
  }

  #kick(): void {
    this.#running ??= this.#drain().finally(() => (this.#running = null));
  }

  /**
   * Stops taking jobs. A job running now is not waited for (it may take
   * minutes): its child dies with the service, the resource stays PREPARING,
   * and the next start prepares it again from the beginning.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#queue.length = 0;
    this.#conforms.length = 0;
    return Promise.resolve();
  }

  async #drain(): Promise<void> {
    while (!this.#closed) {
      const id = this.#queue.shift();
      const rendition = id === undefined ? this.#conforms.shift() : undefined;
      if (id === undefined && rendition === undefined) return;
      try {
        if (id !== undefined) await this.#prepare(id);
        else if (rendition !== undefined) await conformRendition(this.db, this.paths, this.log, rendition);
      } catch (err) {
        this.log.error('preparing a VOD resource failed unexpectedly', { vod: id, rendition, err: String(err) });
      }
    }
  }

  async #prepare(id: string): Promise<void> {
    const vod = await this.db.vodResource.findUnique({ where: { id } });
    if (vod === null || vod.state !== 'PREPARING') return;
    const relative = join('prepared', `${id}.mp4`);
    const output = join(this.paths.dataDir, relative);
    await mkdir(join(this.paths.dataDir, 'prepared'), { recursive: true });
    const started = Date.now();
    this.log.info('preparing VOD resource', { vod: id });
    try {
      const input = await resolveMediaPath(this.paths.mediaRoot, vod.path);
      await transcode({
        input,
        output,
        hasVideo: vod.videoCodec !== null,
        hasAudio: vod.audioCodec !== null,
        frameRate: vod.frameRate,
        profile: profileOf(vod.transcodeProfile),
        onProgress: throttledProgress(progressWriteMs, (fraction) => {
          this.db.vodResource.update({ where: { id }, data: { prepareProgress: fraction } }).catch(() => undefined);
        }),
      });
      const file = await readMp4(output);
      const video = file.tracks.find((t) => t.kind === 'video' && t.codec === 'h264') ?? null;
      const audio = file.tracks.find((t) => t.kind === 'audio' && t.codec === 'aac') ?? null;
      await this.db.vodResource.update({
        where: { id },
        data: {
          state: 'READY',
          preparedPath: relative,
          prepareProgress: 1,
          prepareError: null,
          videoCodec: video === null ? null : 'h264',
          videoProfile: video === null ? null : 'high',
          width: video?.width ?? null,
          height: video?.height ?? null,
          videoDurationSeconds: video === null ? null : trackSeconds(video),
          audioCodec: audio === null ? null : 'aac',
          audioSampleRate: audio?.sampleRate ?? null,
          audioChannels: audio?.channels ?? null,
          audioDurationSeconds: audio === null ? null : trackSeconds(audio),
        },
      });
      this.log.info('VOD resource prepared', { vod: id, seconds: (Date.now() - started) / 1000 });
    } catch (err) {
      await rm(output, { force: true });
      const reason = (err as Error).message;
      await this.db.vodResource.update({ where: { id }, data: { state: 'FAILED', prepareError: reason } });
      this.log.warn('VOD resource could not be prepared', { vod: id, reason });
    }
  }
}
