/**
 * Media probing through GStreamer's own `gst-discoverer-1.0`, so the verdict
 * ("can this be copied into FLV?") comes from the same demuxers and parsers
 * the pipelines use. ffprobe would judge with another library.
 *
 * Why the plain (non-verbose) output: `-v` prints every tag, and tag values
 * are printed raw, newlines included, so a crafted title could forge stream
 * lines. The plain output prints no tags; its codec names are GStreamer's
 * description strings, read with LC_ALL=C so they are the English ones.
 */
import { execFile } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { VliveError } from '../errors.js';

export const DISCOVERER_BIN = 'gst-discoverer-1.0';

export type VideoCodec = 'h264' | 'hevc' | 'mpeg1' | 'mpeg2' | 'mpeg4' | 'vp8' | 'vp9' | 'av1' | 'theora' | 'mjpeg' | 'wmv' | 'prores' | 'unknown';
export type AudioCodec = 'aac' | 'mp3' | 'mp2' | 'opus' | 'ac3' | 'eac3' | 'vorbis' | 'flac' | 'alac' | 'pcm' | 'dts' | 'wma' | 'unknown';

export interface VideoInfo {
  readonly codec: VideoCodec;
  /** GStreamer's description, e.g. "H.264 (High Profile)"; kept for messages and unknown codecs. */
  readonly description: string;
  /** GStreamer profile nick, e.g. "high", "constrained-baseline", "main-10"; null when not reported. */
  readonly profile: string | null;
  readonly width: number;
  readonly height: number;
  /** Frames per second (30000/1001 → 29.97…); null when variable or unknown. */
  readonly frameRate: number | null;
  /** Not reported per track by gst-discoverer; null for now. */
  readonly durationSeconds: number | null;
}

export interface AudioInfo {
  readonly codec: AudioCodec;
  readonly description: string;
  /** Hz. */
  readonly sampleRate: number;
  readonly channels: number;
  /** Not reported per track by gst-discoverer; null for now. */
  readonly durationSeconds: number | null;
}

export interface ProbeResult {
  /** Short container name (mp4 — also .mov —, matroska, webm, mpegts, flv, avi, ogg, mpeg-ps, asf, …); null for an elementary stream. */
  readonly container: string | null;
  /** Null when the container does not say (e.g. some MPEG-TS files). */
  readonly durationSeconds: number | null;
  readonly seekable: boolean;
  /** The first video track, or null. */
  readonly video: VideoInfo | null;
  /** The first audio track, or null. */
  readonly audio: AudioInfo | null;
  /** True when every track present can go into FLV as is: H.264 video, AAC or MP3 audio. */
  readonly copyable: boolean;
}

export interface ProbeOptions {
  /** Kill the discoverer after this long. Default 15000 ms: the first run on a fresh machine also builds GStreamer's plugin registry. */
  readonly timeoutMs?: number;
}

const VIDEO_CODECS: ReadonlyArray<readonly [RegExp, VideoCodec]> = [
  [/H\.264/, 'h264'],
  [/H\.265|HEVC/, 'hevc'],
  [/^MPEG-1 Video/, 'mpeg1'],
  [/^MPEG-2 Video/, 'mpeg2'],
  [/^MPEG-4 Video|DivX|XviD/i, 'mpeg4'],
  [/VP8/, 'vp8'],
  [/VP9/, 'vp9'],
  [/AV1/, 'av1'],
  [/Theora/, 'theora'],
  [/JPEG/, 'mjpeg'],
  [/Windows Media Video/, 'wmv'],
  [/ProRes/, 'prores'],
];

const AUDIO_CODECS: ReadonlyArray<readonly [RegExp, AudioCodec]> = [
  [/AAC/, 'aac'],
  [/Layer 3|MP3/, 'mp3'],
  [/Layer 2|MP2/, 'mp2'],
  [/^Opus/, 'opus'],
  [/^E-AC-3/, 'eac3'],
  [/AC-3/, 'ac3'],
  [/Vorbis/, 'vorbis'],
  [/FLAC/, 'flac'],
  [/ALAC/, 'alac'],
  [/PCM|Raw/i, 'pcm'],
  [/DTS/, 'dts'],
  [/Windows Media Audio/, 'wma'],
];

const CONTAINERS: ReadonlyArray<readonly [RegExp, string | null]> = [
  [/^Quicktime|MP4/i, 'mp4'],
  [/^WebM/, 'webm'],
  [/^Matroska/, 'matroska'],
  [/Transport Stream/, 'mpegts'],
  [/^MPEG-\d System Stream/, 'mpeg-ps'],
  [/^Flash/, 'flv'],
  [/AVI/, 'avi'],
  [/^Ogg/, 'ogg'],
  [/ASF|Windows Media/, 'asf'],
  // An ID3 tag wrapped around an elementary MP3 stream is no container.
  [/^ID3 tag/, null],
];

function classify<T>(table: ReadonlyArray<readonly [RegExp, T]>, description: string, fallback: T): T {
  for (const [re, value] of table) if (re.test(description)) return value;
  return fallback;
}

/** "H.264 (Constrained Baseline Profile)" → "constrained-baseline", GStreamer's nick. */
function profileOf(description: string): string | null {
  const m = /\(([^()]+) Profile\)/.exec(description);
  return m?.[1] === undefined ? null : m[1].toLowerCase().replace(/\s+/g, '-');
}

/** "0:01:02.500000000" → 62.5; zero means unknown to GStreamer. */
function parseDuration(text: string | undefined): number | null {
  const m = /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(text ?? '');
  if (m === null) return null;
  const seconds = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  return seconds > 0 ? seconds : null;
}

function parseFraction(text: string | undefined): number | null {
  const m = /^(\d+)\/(\d+)$/.exec(text ?? '');
  if (m === null) return null;
  const num = Number(m[1]);
  const den = Number(m[2]);
  return num > 0 && den > 0 ? num / den : null;
}

function parseInt10(text: string | undefined): number {
  const m = /^(\d+)/.exec(text ?? '');
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

interface RawStream {
  readonly kind: string;
  readonly description: string;
  readonly fields: Map<string, string>;
}

interface RawReport {
  readonly properties: Map<string, string>;
  readonly streams: RawStream[];
  readonly error: string | null;
}

const STREAM_LINE = /^( +)(container|video|audio|subtitles|image|unknown) #\d+: (.*)$/;
const FIELD_LINE = /^ +([A-Za-z][A-Za-z ]*): ?(.*)$/;

/**
 * Splits discoverer output into properties and a flat list of streams, in
 * print order. Field lines belong to the stream line above them.
 */
export function parseDiscovererOutput(stdout: string): RawReport {
  const lines = stdout.split('\n');
  const errorAt = lines.findIndex((l) => l.startsWith('An error was encountered'));
  if (errorAt >= 0) {
    const message = lines.slice(errorAt + 1).map((l) => l.trim()).filter((l) => l !== '').join(' ');
    return { properties: new Map(), streams: [], error: message === '' ? 'unknown error' : message };
  }
  const properties = new Map<string, string>();
  const streams: RawStream[] = [];
  let current: RawStream | null = null;
  let inProperties = false;
  for (const line of lines) {
    if (line === 'Properties:') {
      inProperties = true;
      continue;
    }
    if (!inProperties) continue;
    const stream = STREAM_LINE.exec(line);
    if (stream !== null) {
      current = { kind: stream[2] ?? '', description: (stream[3] ?? '').trim(), fields: new Map() };
      streams.push(current);
      continue;
    }
    const field = FIELD_LINE.exec(line);
    if (field === null) continue;
    const key = field[1] ?? '';
    const value = (field[2] ?? '').trim();
    const target = current === null ? properties : current.fields;
    // First one wins: the only free text printed (Language) comes after
    // the fields we read, so it cannot override them.
    if (!target.has(key)) target.set(key, value);
  }
  const missing = /Missing plugins/i.test(stdout) ? 'GStreamer is missing a plugin for this media' : null;
  return { properties, streams, error: missing };
}

/** Turns parsed discoverer output into a ProbeResult; `name` is for messages. */
export function toProbeResult(report: RawReport, name: string): ProbeResult {
  if (report.error !== null) throw discovererError(report.error, name);

  // The root of the topology is the container, unless the file is a bare
  // elementary stream and the root is the track itself.
  const root = report.streams[0];
  const container =
    root === undefined || (root.kind !== 'container' && root.kind !== 'unknown')
      ? null
      : classify(CONTAINERS, root.description, root.description.toLowerCase());

  const v = report.streams.find((s) => s.kind === 'video');
  const a = report.streams.find((s) => s.kind === 'audio');
  const video: VideoInfo | null =
    v === undefined
      ? null
      : {
          codec: classify(VIDEO_CODECS, v.description, 'unknown'),
          description: v.description,
          profile: profileOf(v.description),
          width: parseInt10(v.fields.get('Width')),
          height: parseInt10(v.fields.get('Height')),
          frameRate: parseFraction(v.fields.get('Frame rate')),
          durationSeconds: null,
        };
  const audio: AudioInfo | null =
    a === undefined
      ? null
      : {
          codec: classify(AUDIO_CODECS, a.description, 'unknown'),
          description: a.description,
          sampleRate: parseInt10(a.fields.get('Sample rate')),
          channels: parseInt10(a.fields.get('Channels')),
          durationSeconds: null,
        };
  if (video === null && audio === null) {
    throw new VliveError('MEDIA_UNSUPPORTED', `${name} has no audio or video track`);
  }
  const copyable =
    (video === null || video.codec === 'h264') && (audio === null || audio.codec === 'aac' || audio.codec === 'mp3');
  return {
    container,
    durationSeconds: parseDuration(report.properties.get('Duration')),
    seekable: report.properties.get('Seekable') === 'yes',
    video,
    audio,
    copyable,
  };
}

function discovererError(message: string, name: string): VliveError {
  if (/Resource not found/i.test(message)) return new VliveError('MEDIA_UNREADABLE', `${name} does not exist`);
  if (/Could not determine type of stream/i.test(message)) {
    return new VliveError('MEDIA_UNREADABLE', `${name} is not a media file GStreamer can read (unknown format); check that it is a complete audio/video file`);
  }
  if (/missing a plugin/i.test(message)) {
    return new VliveError('MEDIA_UNSUPPORTED', `${name}: ${message}`);
  }
  return new VliveError('MEDIA_UNREADABLE', `${name} could not be read as media: ${message}`);
}

/**
 * Probes a local file. `absPath` should come from resolveMediaPath(); it is
 * handed to the discoverer as a file:// URI, because a bare path that names
 * a directory makes gst-discoverer walk the whole tree.
 *
 * @throws VliveError MEDIA_UNREADABLE (missing, not media, timed out),
 *   MEDIA_UNSUPPORTED (no audio/video, missing GStreamer plugin).
 */
export async function probeMedia(absPath: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  if (!isAbsolute(absPath)) throw new Error(`probeMedia needs an absolute path, got ${JSON.stringify(absPath)}`);
  const timeoutMs = options.timeoutMs ?? 15_000;
  const name = `file ${JSON.stringify(absPath.split('/').pop())}`;
  const uri = pathToFileURL(absPath).href;
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      DISCOVERER_BIN,
      // Its own -t bounds the discovery; our kill timer bounds everything
      // else, e.g. a FIFO that blocks open() forever.
      ['-t', String(Math.max(1, Math.floor(timeoutMs / 1000))), uri],
      {
        timeout: timeoutMs + 2_000,
        killSignal: 'SIGKILL',
        maxBuffer: 4 * 1024 * 1024,
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      },
      (err, out) => {
        if (err === null) return resolve(out);
        if ('code' in err && err.code === 'ENOENT') {
          return reject(new Error(`${DISCOVERER_BIN} is not installed (Debian package gstreamer1.0-plugins-base-apps)`));
        }
        if (err.killed) {
          return reject(new VliveError('MEDIA_UNREADABLE', `${name}: probing timed out after ${timeoutMs} ms`));
        }
        // It exits non-zero on some failures but still prints the reason.
        if (out.includes('An error was encountered')) return resolve(out);
        reject(new VliveError('MEDIA_UNREADABLE', `${name} could not be probed: ${err.message.split('\n')[0] ?? ''}`));
      },
    );
  });
  return toProbeResult(parseDiscovererOutput(stdout), name);
}
