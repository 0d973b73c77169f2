/**
 * Test media made at test time with ffmpeg's lavfi sources, and ffmpeg /
 * ffprobe as the independent publisher and receiver. ffmpeg is a test tool
 * only; the product never runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export type TestVideoCodec = 'h264' | 'hevc';
export type TestAudioCodec = 'aac' | 'mp3' | 'opus';

export interface MakeMediaOptions {
  /** Video length, seconds. Default 3. */
  readonly seconds?: number;
  /** Audio length, seconds; differs from `seconds` to make uneven tracks. Default `seconds`. */
  readonly audioSeconds?: number;
  /** Default 320. */
  readonly width?: number;
  /** Default 240. */
  readonly height?: number;
  /** Frames per second, or a fraction such as '30000/1001'; the GOP is about one second. Default 25. */
  readonly fps?: number | `${number}/${number}`;
  /** Default 'h264'; false for no video track. */
  readonly video?: TestVideoCodec | false;
  /** Default 'aac'; false for no audio track. */
  readonly audio?: TestAudioCodec | false;
  /** Hz. Default 48000 (44100 for mp3). */
  readonly sampleRate?: number;
  /** Default 2. */
  readonly channels?: number;
  /** Container, by file extension. Default 'mp4'. */
  readonly container?: 'mp4' | 'mkv' | 'flv' | 'ts' | 'mov';
  /** File name without extension. Default derived from the options. */
  readonly name?: string;
  /** Keyframe interval in seconds. Default 1. */
  readonly gopSeconds?: number;
  /** Frequency of the sine tone, Hz: files that must differ in content use different tones. Default 440. */
  readonly toneHz?: number;
}

interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with an argument array (no shell) and a timeout. */
export function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<RunResult> {
  return runTimed(cmd, args, timeoutMs, () => {});
}

/**
 * Writes a test file (testsrc2 pattern + sine tone) into `dir` and returns
 * its path. H.264 is libx264, yuv420p, with a fixed one-second GOP.
 */
export async function makeMp4(dir: string, options: MakeMediaOptions = {}): Promise<string> {
  const seconds = options.seconds ?? 3;
  const audioSeconds = options.audioSeconds ?? seconds;
  const width = options.width ?? 320;
  const height = options.height ?? 240;
  const fps = options.fps ?? 25;
  const [num, den] = String(fps).split('/').map(Number);
  const gop = String(Math.max(1, Math.round(((num ?? 25) / (den ?? 1)) * (options.gopSeconds ?? 1))));
  const video = options.video ?? 'h264';
  const audio = options.audio ?? 'aac';
  const sampleRate = options.sampleRate ?? (audio === 'mp3' ? 44100 : 48000);
  const channels = options.channels ?? 2;
  const container = options.container ?? 'mp4';
  if (video === false && audio === false) throw new Error('makeMp4 needs at least one track');
  const name = options.name ?? `${video || 'novideo'}-${audio || 'noaudio'}-${width}x${height}-${String(fps).replace('/', '_')}-${seconds}s`;
  const out = join(dir, `${name}.${container}`);

  const args = ['-hide_banner', '-loglevel', 'error', '-y'];
  if (video !== false) args.push('-f', 'lavfi', '-t', String(seconds), '-i', `testsrc2=size=${width}x${height}:rate=${fps}`);
  if (audio !== false) args.push('-f', 'lavfi', '-t', String(audioSeconds), '-i', `sine=frequency=${options.toneHz ?? 440}:sample_rate=${sampleRate}`);
  if (video === 'h264') {
    args.push('-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p');
    args.push('-g', gop, '-keyint_min', gop, '-sc_threshold', '0');
  } else if (video === 'hevc') {
    args.push('-c:v', 'libx265', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-x265-params', `log-level=error:keyint=${gop}:min-keyint=${gop}:scenecut=0`);
    if (container === 'mp4' || container === 'mov') args.push('-tag:v', 'hvc1');
  }
  if (audio !== false) {
    const codec = { aac: 'aac', mp3: 'libmp3lame', opus: 'libopus' }[audio];
    args.push('-c:a', codec, '-ac', String(channels), '-b:a', '96k');
  }
  if (container === 'mp4' || container === 'mov') args.push('-movflags', '+faststart');
  args.push(out);
  await run('ffmpeg', args, 120_000);
  return out;
}

export interface PacketStream {
  readonly index: number;
  readonly codecType: 'video' | 'audio' | string;
  readonly codecName: string;
  readonly profile: string | null;
  readonly width: number | null;
  readonly height: number | null;
  /** Average frame rate, frames per second. */
  readonly frameRate: number | null;
  readonly sampleRate: number | null;
  readonly channels: number | null;
  /** DTS of each packet in arrival order, seconds; packets without DTS are skipped. */
  readonly dts: number[];
  /** Flags of each packet, e.g. "K_" for a keyframe; same order as `dts`. */
  readonly keyframes: boolean[];
  /** When ffprobe printed each packet, seconds after it was spawned; same order as `dts`. */
  readonly arrivals: number[];
}

export interface PacketReport {
  readonly streams: PacketStream[];
  readonly video: PacketStream | null;
  readonly audio: PacketStream | null;
}

interface FfprobeJson {
  streams?: Array<{
    index: number;
    codec_type?: string;
    codec_name?: string;
    profile?: string;
    width?: number;
    height?: number;
    avg_frame_rate?: string;
    r_frame_rate?: string;
    sample_rate?: string;
    channels?: number;
  }>;
  packets?: Array<{ stream_index: number; dts_time?: string; flags?: string }>;
}

function fraction(text: string | undefined): number | null {
  const m = /^(\d+)\/(\d+)$/.exec(text ?? '');
  if (m === null) return null;
  const den = Number(m[2]);
  return den === 0 ? null : Number(m[1]) / den;
}

export interface ProbeOptions {
  /** Wall time allowed beyond `seconds`. Default 20 s. */
  readonly graceMs?: number;
  /**
   * Skip ffprobe's frame-rate probing, which holds back the first 2-3 s of
   * packets and prints them at once; the stream info is still complete for
   * FLV. For probes whose arrivals are judged (paceProblem).
   */
  readonly forPace?: boolean;
}

/**
 * Reads `seconds` of a file or stream (rtmp://, http://…m3u8) with ffprobe
 * and returns per-stream codec info and packet DTS lists. Gives up after
 * `seconds` + graceMs of wall time. ffprobe runs line-buffered (`stdbuf
 * -oL`), so each packet's arrival is timed here as it is printed.
 */
export async function probePackets(url: string, seconds: number, options: ProbeOptions = {}): Promise<PacketReport> {
  const graceMs = options.graceMs ?? 20_000;
  const args = [
    '-oL', 'ffprobe',
    '-v', 'error',
    ...(options.forPace === true ? ['-fpsprobesize', '0'] : []),
    '-rw_timeout', String((seconds * 1000 + graceMs) * 1000),
    '-read_intervals', `%+${seconds}`,
    '-show_streams', '-show_packets',
    '-show_entries', 'packet=stream_index,dts_time,flags',
    '-of', 'json',
    url,
  ];
  // One arrival per packet object, in print order: only packets have a "stream_index" key.
  const printed: number[] = [];
  const { stdout } = await runTimed('stdbuf', args, seconds * 1000 + graceMs, (line, at) => {
    if (line.trimStart().startsWith('"stream_index"')) printed.push(at);
  });
  const json = JSON.parse(stdout) as FfprobeJson;
  const packets = (json.packets ?? []).map((p, i) => ({ ...p, arrival: printed[i] ?? Number.NaN }));
  const streams: PacketStream[] = (json.streams ?? []).map((s) => {
    const mine = packets.filter((p) => p.stream_index === s.index && p.dts_time !== undefined);
    return {
      index: s.index,
      codecType: s.codec_type ?? 'unknown',
      codecName: s.codec_name ?? 'unknown',
      profile: s.profile ?? null,
      width: s.width ?? null,
      height: s.height ?? null,
      frameRate: fraction(s.avg_frame_rate) ?? fraction(s.r_frame_rate),
      sampleRate: s.sample_rate === undefined ? null : Number(s.sample_rate),
      channels: s.channels ?? null,
      dts: mine.map((p) => Number(p.dts_time)),
      keyframes: mine.map((p) => (p.flags ?? '').includes('K')),
      arrivals: mine.map((p) => p.arrival),
    };
  });
  return {
    streams,
    video: streams.find((s) => s.codecType === 'video') ?? null,
    audio: streams.find((s) => s.codecType === 'audio') ?? null,
  };
}

/**
 * run(), calling `each` with every complete stdout line and when it came
 * (seconds after the spawn).
 */
function runTimed(cmd: string, args: readonly string[], timeoutMs: number, each: (line: string, at: number) => void): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnedAt = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: string[] = [];
    let err = '';
    let partial = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const at = (performance.now() - spawnedAt) / 1000;
      out.push(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) each(line, at);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      err = (err + chunk).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} failed: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ stdout: out.join(''), stderr: err });
      const how = signal === 'SIGKILL' ? `timed out after ${timeoutMs} ms` : `failed: ${signal ?? `exit code ${code}`} from ${cmd} ${args.join(' ')}`;
      reject(new Error(`${cmd} ${how}\n${err.slice(-2000)}`));
    });
  });
}

/** Seconds of media a probe read: first to last DTS over all its streams (ffprobe's read interval is counted so). */
export function mediaSpan(report: PacketReport): number {
  const all = report.streams.flatMap((s) => s.dts);
  return all.length === 0 ? 0 : Math.max(...all) - Math.min(...all);
}

/**
 * Whether a probe's packets arrived at real-time pace; null when they did,
 * else why not. Each packet's lag is its arrival (seconds after ffprobe's
 * spawn) less its media time. Two things only lower the lag, at the start:
 * the origin may burst the GOP in hand to a new player, and ffprobe prints
 * the packets it read while probing the streams at once (together about a
 * second of test media with `forPace`). So a stream
 *  - outran the clock when its last packet came more than a second before
 *    the media's length had passed since the spawn;
 *  - fell behind (stalled, or ran slow) when, from the packet it was most
 *    caught up on, the lag grew by more than half a second.
 * ffprobe's start-up and connect, seconds on a loaded machine, count in
 * neither: they delay every packet alike.
 */
export function paceProblem(report: PacketReport): string | null {
  const packets = report.streams
    .flatMap((s) => s.dts.map((d, i) => ({ dts: d, at: s.arrivals[i] ?? Number.NaN })))
    .sort((a, b) => a.at - b.at);
  const first = packets[0];
  const last = packets.at(-1);
  if (first === undefined || last === undefined) return 'no packets';
  const media = mediaSpan(report);
  const d0 = Math.min(...packets.map((p) => p.dts));
  const lag = (p: { dts: number; at: number }): number => p.at - (p.dts - d0);
  if (last.at < media - 1) {
    return `outran the clock: ${media.toFixed(2)} s of media had arrived ${last.at.toFixed(2)} s after ffprobe's start`;
  }
  const caughtUp = packets.reduce((best, p) => (lag(p) < lag(best) ? p : best), first);
  const behind = lag(last) - lag(caughtUp);
  if (behind <= 0.5) return null;
  let gap = 0;
  let gapAt = 0;
  for (let i = 1; i < packets.length; i++) {
    const d = (packets[i]?.at ?? 0) - (packets[i - 1]?.at ?? 0);
    if (d > gap) [gap, gapAt] = [d, packets[i - 1]?.at ?? 0];
  }
  return `fell behind the clock: ${behind.toFixed(2)} s more lag at the end (${last.at.toFixed(2)} s after ffprobe's start, ${media.toFixed(2)} s of media) than at ${caughtUp.at.toFixed(2)} s; longest wait between packets ${gap.toFixed(2)} s, at ${gapAt.toFixed(2)} s`;
}

/** Wall seconds from a probe's first packet to its last. */
export function arrivalSpan(report: PacketReport): number {
  const arrivals = report.streams.flatMap((s) => s.arrivals);
  return arrivals.length === 0 ? 0 : Math.max(...arrivals) - Math.min(...arrivals);
}

export interface Publisher {
  readonly process: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited. */
  stop(): Promise<void>;
  /** Last stderr output, for assertion messages. */
  stderr(): string;
}

/**
 * Publishes a file in real time (`-re`) to an RTMP URL with
 * `ffmpeg -c copy -f flv`, the reference for what a channel does.
 */
export function startPublisher(file: string, url: string, options: { loop?: boolean } = {}): Publisher {
  const args = ['-hide_banner', '-loglevel', 'error', '-re'];
  if (options.loop === true) args.push('-stream_loop', '-1');
  args.push('-i', file, '-c', 'copy', '-f', 'flv', url);
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => {
    tail = (tail + c).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  return {
    process: child,
    exited,
    stderr: () => tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One decoded frame's shape, as ffprobe's decoder saw it (ffprobe 5.1 gives no per-frame sample rate: judge it by the DTS steps). */
export interface ProbedFrame {
  readonly kind: 'video' | 'audio';
  readonly width: number | null;
  readonly height: number | null;
  readonly channels: number | null;
}

/**
 * Decodes `seconds` of a stream with ffprobe and returns every frame's
 * picture size or channel count: a decoder follows new sequence headers, so
 * this sees each item of a playlist as it really is, not the first one's
 * stream info.
 */
export async function probeFrames(url: string, seconds: number, graceMs = 20_000): Promise<ProbedFrame[]> {
  const args = [
    '-v', 'error',
    '-rw_timeout', String((seconds * 1000 + graceMs) * 1000),
    '-read_intervals', `%+${seconds}`,
    '-show_frames',
    '-show_entries', 'frame=media_type,width,height,channels',
    '-of', 'json',
    url,
  ];
  const { stdout } = await run('ffprobe', args, seconds * 1000 + graceMs);
  const json = JSON.parse(stdout) as { frames?: Array<{ media_type?: string; width?: number; height?: number; channels?: number }> };
  return (json.frames ?? [])
    .filter((f) => f.media_type === 'video' || f.media_type === 'audio')
    .map((f) => ({
      kind: f.media_type === 'video' ? 'video' : 'audio',
      width: f.width ?? null,
      height: f.height ?? null,
      channels: f.channels ?? null,
    }));
}
