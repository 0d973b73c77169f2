/**
 * One-time transcoding at registration: media the worker cannot copy into
 * FLV (HEVC, MPEG-2, VP9 video; Opus, AC-3, Vorbis audio; MKV, TS, WebM…)
 * becomes a "prepared" MP4 (H.264 High + AAC-LC, constant GOP) that the
 * worker then loops cheaply.
 *
 * The work runs in a child process (transcode-main.ts) at nice 19, so a
 * crash or a runaway decoder cannot take the service with it and encoding
 * yields the CPU to live channels. This module is the parent side and the
 * IPC contract; it never loads GStreamer itself.
 *
 * Stages, as elsewhere: TranscodeJob (raw) → validated → TranscodeSpec
 * (compiled: integers and paths only) → sent to the child.
 *
 * Imports nothing of ours: the child side (transcode-main.ts)
 * is the only part that loads gst/.
 */
import { fork } from 'node:child_process';
import { rename, rm } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';

export type TranscodePreset = 'ultrafast' | 'superfast' | 'veryfast' | 'faster' | 'fast' | 'medium';

/** x264enc's GstX264EncPreset enum values; the template takes the number. */
export const presetEnum: Readonly<Record<TranscodePreset, number>> = {
  ultrafast: 1,
  superfast: 2,
  veryfast: 3,
  faster: 4,
  fast: 5,
  medium: 6,
};

export interface TranscodeProfile {
  /** Output width in pixels, even, 16..3840; null (with height null) keeps the source size. */
  width: number | null;
  /** Output height in pixels, even, 16..2160; null (with width null) keeps the source size. The picture is letterboxed, never stretched. */
  height: number | null;
  /** H.264 bitrate, kbit/s, 100..20000. */
  videoKbps: number;
  /** AAC bitrate, kbit/s, 32..512. */
  audioKbps: number;
  /** x264 speed preset. */
  preset: TranscodePreset;
  /** Keyframe interval, seconds, 0.5..10. */
  gopSeconds: number;
}

/** Source size, 2500 kbit/s video, 128 kbit/s audio, preset veryfast, a keyframe every 2 s. */
export const defaultProfile: TranscodeProfile = Object.freeze({
  width: null,
  height: null,
  videoKbps: 2500,
  audioKbps: 128,
  preset: 'veryfast',
  gopSeconds: 2,
});

function checkNumber(name: string, v: unknown, min: number, max: number, opts: { integer?: boolean; even?: boolean } = {}): void {
  const kind = opts.even === true ? 'an even integer' : opts.integer === true ? 'an integer' : 'a number';
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (opts.integer === true && !Number.isInteger(v)) || (opts.even === true && v % 2 !== 0)) {
    throw new RangeError(`profile.${name} must be ${kind} from ${min} to ${max}, got ${String(v)}`);
  }
}

/** @throws RangeError naming the first bad field. */
export function validateProfile(p: TranscodeProfile): void {
  if ((p.width === null) !== (p.height === null)) {
    throw new RangeError('profile.width and profile.height must both be set or both be null (keep the source size)');
  }
  if (p.width !== null) checkNumber('width', p.width, 16, 3840, { integer: true, even: true });
  if (p.height !== null) checkNumber('height', p.height, 16, 2160, { integer: true, even: true });
  checkNumber('videoKbps', p.videoKbps, 100, 20000, { integer: true });
  checkNumber('audioKbps', p.audioKbps, 32, 512, { integer: true });
  if (!Object.hasOwn(presetEnum, p.preset)) {
    throw new RangeError(`profile.preset must be one of ${Object.keys(presetEnum).join(', ')}, got ${JSON.stringify(p.preset)}`);
  }
  checkNumber('gopSeconds', p.gopSeconds, 0.5, 10);
}

export interface TranscodeJob {
  /** Absolute path of the source file, already confined to the media root. */
  input: string;
  /** Absolute path of the prepared MP4; written as `output + '.part'`, renamed on success. */
  output: string;
  /** The input has a video track to transcode (from the probe). Must match the file: a branch with no track stalls the muxer. */
  hasVideo: boolean;
  /** The input has an audio track to transcode (from the probe). */
  hasAudio: boolean;
  /**
   * Output frame rate, frames per second, 1..240. Pass the probed source
   * rate to keep it; videorate then only evens out irregular timestamps.
   * It also sets the GOP length in frames. Null keeps the source timing
   * untouched, and the GOP is counted as if the rate were 25 fps.
   */
  frameRate: number | null;
  profile: TranscodeProfile;
  /**
   * Audio resampled and mixed to this rate (Hz, 8000..96000) and channel
   * count (1 or 2), as an output profile wants; absent keeps the source's
   * rate and at most stereo.
   */
  audioFormat?: { rate: number; channels: number };
  /** The child is killed and the job fails after this long. Default 30 min. */
  timeoutMs?: number;
  /** Called with 0..1, about once a second, never decreasing; 1 on success. */
  onProgress?: (fraction: number) => void;
}

/** Default TranscodeJob.timeoutMs. */
export const DEFAULT_TRANSCODE_TIMEOUT_MS = 30 * 60_000;
/** The rate GOPs are counted at when the frame rate is unknown (the worker assumes it too). */
export const ASSUMED_FRAME_RATE = 25;
/** Grace between SIGTERM and SIGKILL, and for the child to exit after it reported. */
const KILL_GRACE_MS = 3_000;

// ---------------------------------------------------------------------------
// IPC. One union per direction, validated on arrival by the parsers below.

/** The compiled job: only integers, booleans and paths cross the process boundary. */
export interface TranscodeSpec {
  input: string;
  /** Where mp4mux writes (the `.part` file). */
  output: string;
  /** mp4mux's faststart scratch file, next to the output so a kill leaves nothing in /tmp. */
  scratch: string;
  video: {
    kbps: number;
    gopFrames: number;
    /** x264enc GstX264EncPreset value. */
    preset: number;
    width: number | null;
    height: number | null;
    /** Output rate as a fraction; null keeps the source timing. */
    fpsNum: number | null;
    fpsDen: number | null;
  } | null;
  audio: { bps: number; rate: number | null; channels: number | null } | null;
}

/** Service → transcoder process; named by direction, as ToWorker and FromWorker (src/pool/ipc.ts). */
export type ToTranscoder = { type: 'transcode'; spec: TranscodeSpec };

/** Transcoder process → service. */
export type FromTranscoder =
  | { type: 'progress'; positionSeconds: number; durationSeconds: number | null }
  | { type: 'done' }
  | { type: 'failed'; error: string };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && !v.includes('\0');
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isUintOrNull = (v: unknown): v is number | null => v === null || isUint(v);

export function parseToTranscoder(raw: unknown): ToTranscoder | null {
  if (!isObj(raw) || raw['type'] !== 'transcode' || !isObj(raw['spec'])) return null;
  const s = raw['spec'];
  const v = s['video'];
  const a = s['audio'];
  if (!isStr(s['input']) || !isStr(s['output']) || !isStr(s['scratch'])) return null;
  if (v !== null && !(isObj(v) && isUint(v['kbps']) && isUint(v['gopFrames']) && isUint(v['preset'])
    && isUintOrNull(v['width']) && isUintOrNull(v['height']) && isUintOrNull(v['fpsNum']) && isUintOrNull(v['fpsDen']))) return null;
  if (a !== null && !(isObj(a) && isUint(a['bps']) && isUintOrNull(a['rate']) && isUintOrNull(a['channels']))) return null;
  if (v === null && a === null) return null;
  return { type: 'transcode', spec: s as unknown as TranscodeSpec };
}

export function parseFromTranscoder(raw: unknown): FromTranscoder | null {
  if (!isObj(raw)) return null;
  switch (raw['type']) {
    case 'progress': {
      const p = raw['positionSeconds'];
      const d = raw['durationSeconds'];
      if (typeof p !== 'number' || !Number.isFinite(p)) return null;
      if (d !== null && (typeof d !== 'number' || !Number.isFinite(d))) return null;
      return { type: 'progress', positionSeconds: p, durationSeconds: d };
    }
    case 'done':
      return { type: 'done' };
    case 'failed':
      return typeof raw['error'] === 'string' ? { type: 'failed', error: raw['error'] } : null;
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------

/**
 * A frame rate as an integer fraction: NTSC rates (24000/1001, 30000/1001,
 * 60000/1001) exactly, others to the millisecond-frame (den 1000) at worst.
 */
export function frameRateFraction(fps: number): { num: number; den: number } {
  for (const den of [1, 1001, 2, 4, 5, 10, 100, 1000]) {
    const num = Math.round(fps * den);
    if (Math.abs(num / den - fps) < 1e-6 * fps) return { num, den };
  }
  return { num: Math.round(fps * 1000), den: 1000 };
}

/** Validates a job and turns it into what the child needs. @throws RangeError naming the field. */
export function compileJob(job: TranscodeJob, output: string): TranscodeSpec {
  validateProfile(job.profile);
  if (!job.hasVideo && !job.hasAudio) throw new RangeError('job.hasVideo and job.hasAudio are both false: nothing to transcode');
  if (job.frameRate !== null && (!Number.isFinite(job.frameRate) || job.frameRate < 1 || job.frameRate > 240)) {
    throw new RangeError(`job.frameRate must be a number from 1 to 240 or null, got ${String(job.frameRate)}`);
  }
  if (job.input.length === 0 || job.input.includes('\0')) throw new RangeError('job.input must be a non-empty path');
  if (job.output.length === 0 || job.output.includes('\0')) throw new RangeError('job.output must be a non-empty path');
  const af = job.audioFormat;
  if (af !== undefined && (!Number.isInteger(af.rate) || af.rate < 8000 || af.rate > 96000 || (af.channels !== 1 && af.channels !== 2))) {
    throw new RangeError(`job.audioFormat must have a rate from 8000 to 96000 Hz and 1 or 2 channels, got ${JSON.stringify(af)}`);
  }
  const p = job.profile;
  const fps = job.frameRate === null ? null : frameRateFraction(job.frameRate);
  return {
    input: job.input,
    output,
    scratch: `${job.output}.faststart.part`,
    video: job.hasVideo
      ? {
          kbps: p.videoKbps,
          gopFrames: Math.max(1, Math.round(p.gopSeconds * (job.frameRate ?? ASSUMED_FRAME_RATE))),
          preset: presetEnum[p.preset],
          width: p.width,
          height: p.height,
          fpsNum: fps?.num ?? null,
          fpsDen: fps?.den ?? null,
        }
      : null,
    audio: job.hasAudio ? { bps: p.audioKbps * 1000, rate: af?.rate ?? null, channels: af?.channels ?? null } : null,
  };
}

const childScript = fileURLToPath(new URL('./transcode-main.js', import.meta.url));

/**
 * Transcodes `job.input` into `job.output`. Resolves once the output is
 * complete and in place; rejects (leaving neither the output's `.part` nor
 * the scratch file behind) with GStreamer's reason, a timeout or the
 * child's exit. A RangeError means the job itself was invalid.
 */
export async function transcode(job: TranscodeJob): Promise<void> {
  const part = `${job.output}.part`;
  const spec = compileJob(job, part);
  const timeoutMs = job.timeoutMs ?? DEFAULT_TRANSCODE_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError(`job.timeoutMs must be a positive integer, got ${String(timeoutMs)}`);
  const cleanup = (): Promise<unknown> => Promise.all([rm(part, { force: true }), rm(spec.scratch, { force: true })]);
  await cleanup();

  try {
    await runChild(spec, timeoutMs, job.onProgress);
    await rename(part, job.output);
  } catch (err) {
    await cleanup();
    throw err;
  } finally {
    // mp4mux deletes its scratch file itself on success; this is for a kill mid-write.
    await rm(spec.scratch, { force: true });
  }
  safeProgress(job.onProgress, 1);
}

function safeProgress(cb: ((fraction: number) => void) | undefined, fraction: number): void {
  if (cb === undefined) return;
  try {
    cb(fraction);
  } catch {
    // A throwing progress callback is the caller's bug; it must not abort the encode.
  }
}


/**
 * A job's onProgress that passes a fraction on at most once per
 * `intervalMs`: each pass is a database write, and the child reports
 * several times a second.
 */
export function throttledProgress(intervalMs: number, pass: (fraction: number) => void): (fraction: number) => void {
  let last = 0;
  return (fraction) => {
    const now = Date.now();
    if (now - last < intervalMs) return;
    last = now;
    pass(fraction);
  };
}
/** Runs one child to completion. Resolves after it reported 'done' and exited. */
function runChild(spec: TranscodeSpec, timeoutMs: number, onProgress: ((fraction: number) => void) | undefined): Promise<void> {
  const child = fork(childScript, [], {
    // Not the parent's flags: under `node --test` they would make the child a test runner.
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  if (child.pid !== undefined) {
    try {
      // Encoding must yield the CPU to live channels.
      setPriority(child.pid, 19);
    } catch {
      // Gone already: 'exit' reports why.
    }
  }

  return new Promise((resolve, reject) => {
    let outcome: { ok: true } | { ok: false; error: string } | null = null;
    let settled = false;
    let lastFraction = 0;
    const timers: NodeJS.Timeout[] = [];

    const alive = (): boolean => child.exitCode === null && child.signalCode === null;
    /** SIGTERM, then SIGKILL after the grace. */
    const kill = (): void => {
      if (!alive()) return;
      child.kill('SIGTERM');
      timers.push(setTimeout(() => alive() && child.kill('SIGKILL'), KILL_GRACE_MS));
    };
    const conclude = (o: { ok: true } | { ok: false; error: string }): void => {
      if (outcome !== null) return;
      outcome = o;
      clearTimeout(deadline);
      // It exits by itself after reporting; one that lingers is ended.
      if (o.ok) timers.push(setTimeout(kill, KILL_GRACE_MS));
      else kill();
    };
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      for (const t of timers) clearTimeout(t);
      const o = outcome;
      if (o?.ok === true) resolve();
      else reject(new Error(o?.ok === false ? o.error : 'transcode failed'));
    };
    const deadline = setTimeout(() => conclude({ ok: false, error: `transcode timed out after ${timeoutMs} ms` }), timeoutMs);

    child.on('message', (raw: unknown) => {
      const msg = parseFromTranscoder(raw);
      if (msg === null || outcome !== null) return;
      switch (msg.type) {
        case 'progress':
          if (msg.durationSeconds !== null && msg.durationSeconds > 0) {
            const f = Math.min(1, msg.positionSeconds / msg.durationSeconds);
            if (f > lastFraction) {
              lastFraction = f;
              safeProgress(onProgress, f);
            }
          }
          return;
        case 'done':
          conclude({ ok: true });
          return;
        case 'failed':
          conclude({ ok: false, error: `transcode failed: ${msg.error}` });
          return;
      }
    });
    child.once('error', (err) => {
      conclude({ ok: false, error: `transcoder could not run: ${err.message}` });
      // A process that never started sends no 'exit'.
      if (child.pid === undefined) settle();
    });
    child.once('exit', (code, signal) => {
      const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code ?? '?'}`;
      conclude({ ok: false, error: `transcoder ${how} before it finished` });
      settle();
    });

    child.send({ type: 'transcode', spec } satisfies ToTranscoder, (err) => {
      if (err !== null) conclude({ ok: false, error: `transcoder could not be started: ${err.message}` });
    });
  });
}
