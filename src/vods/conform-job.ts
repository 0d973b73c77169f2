/**
 * One conform job: a VOD resource transcoded to an output profile
 * (src/media/output-profile.ts) into `<dataDir>/renditions/<rendition id>.mp4`,
 * run by the preparer's queue at low priority (preparer.ts). The rendition
 * row is CONFORMING meanwhile (progress in the API), then READY, or FAILED
 * with the reason.
 *
 * The source is always the registered file itself, never its prepared copy:
 * one generation of loss, and a file still PREPARING can be conformed at
 * once. The result is read back with the worker's own MP4 reader and must
 * have the profile's shape, or the rendition fails: a copy-mode session
 * cannot take a surprise.
 *
 * Timeline choices (src/worker/vod-timeline.ts plays renditions like any
 * file): the profile's frame rate is forced by videorate, so every rendition
 * of a profile steps its video alike (mp4mux takes its track timescale from
 * that rate); a keyframe every second and none between (the template's
 * fixed GOP), so an item opens, loops and resumes on a keyframe within a
 * second of any point; audio resampled and mixed to the profile's rate and
 * channels, whose AAC frames are then the same length in every item.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrismaClient } from '../generated/prisma-sqlite/client.js';
import type { Logger } from '../log.js';
import { readMp4 } from '../media/mp4.js';
import { exactFrameRate, parseProfileKey, type OutputProfile } from '../media/output-profile.js';
import { resolveMediaPath } from '../media/paths.js';
import { throttledProgress, transcode, type TranscodeProfile } from './transcode.js';

/** How often progress is written to the database while a job runs. */
const progressWriteMs = 1000;
/** Keyframe interval of a rendition, seconds. */
export const conformGopSeconds = 1;

/**
 * The encode settings of a profile: 0.1 bit per pixel and frame (about
 * 2.3 Mbit/s at 720p25, 200 kbit/s at the floor), AAC at 64 kbit/s per channel.
 */
export function conformEncoding(p: OutputProfile): TranscodeProfile {
  const videoKbps = Math.min(20_000, Math.max(200, Math.round((p.width * p.height * p.frameRate * 0.1) / 1000)));
  return { width: p.width, height: p.height, videoKbps, audioKbps: 64 * p.audioChannels, preset: 'veryfast', gopSeconds: conformGopSeconds };
}

/** Why the written file is not the profile's shape; null when it is. */
async function shapeProblem(file: string, p: OutputProfile): Promise<string | null> {
  const mp4 = await readMp4(file);
  const video = mp4.tracks.find((t) => t.kind === 'video');
  const audio = mp4.tracks.find((t) => t.kind === 'audio');
  if (video?.codec !== 'h264' || video.width !== p.width || video.height !== p.height) return `its video is ${video?.codec ?? 'missing'} ${video?.width ?? '?'}x${video?.height ?? '?'}`;
  if (audio?.codec !== 'aac' || audio.sampleRate !== p.audioSampleRate || audio.channels !== p.audioChannels) {
    return `its audio is ${audio?.codec ?? 'missing'} ${audio?.sampleRate ?? '?'} Hz ${audio?.channels ?? '?'} ch`;
  }
  return null;
}

export async function conformRendition(db: PrismaClient, paths: { mediaRoot: string; dataDir: string }, log: Logger, id: string): Promise<void> {
  const row = await db.vodRendition.findUnique({ where: { id }, include: { vodResource: true } });
  if (row === null || row.state !== 'CONFORMING') return;
  const profile = parseProfileKey(row.profileKey);
  if (profile === null) return;
  const relative = join('renditions', `${id}.mp4`);
  const output = join(paths.dataDir, relative);
  await mkdir(join(paths.dataDir, 'renditions'), { recursive: true });
  const vod = row.vodResource;
  const started = Date.now();
  log.info('conforming VOD resource', { vod: vod.id, rendition: id, profile: row.profileKey });
  try {
    await transcode({
      input: await resolveMediaPath(paths.mediaRoot, vod.path),
      output,
      hasVideo: vod.videoCodec !== null,
      hasAudio: vod.audioCodec !== null,
      frameRate: exactFrameRate(profile),
      profile: conformEncoding(profile),
      audioFormat: { rate: profile.audioSampleRate, channels: profile.audioChannels },
      // The last report (1) is left to the READY write below.
      onProgress: throttledProgress(progressWriteMs, (fraction) => {
        if (fraction < 1) db.vodRendition.update({ where: { id }, data: { progress: fraction } }).catch(() => undefined);
      }),
    });
    const problem = await shapeProblem(output, profile);
    if (problem !== null) throw new Error(`the rendition does not fit the profile: ${problem}`);
    await db.vodRendition.update({ where: { id }, data: { state: 'READY', path: relative, progress: 1, error: null } });
    log.info('VOD resource conformed', { vod: vod.id, rendition: id, seconds: (Date.now() - started) / 1000 });
  } catch (err) {
    await rm(output, { force: true });
    const reason = (err as Error).message;
    // The resource may have gone meanwhile (its renditions with it): nothing to record then.
    await db.vodRendition.updateMany({ where: { id }, data: { state: 'FAILED', error: reason } });
    log.warn('VOD resource could not be conformed', { vod: vod.id, rendition: id, reason });
  }
}
