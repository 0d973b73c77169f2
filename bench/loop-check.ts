/**
 * Judges a looped stream from the receiver's side only: ffprobe's packets of
 * the RTMP output, compared with ffprobe's packets of the file itself. Used by
 * test/loops.test.ts (vlive) and bench/loops.ts (vlive and ffmpeg side by side).
 *
 * Loop starts are found by content, not by timestamps: a loop begins where the
 * received packets' data hashes match the file's first packets of that track
 * (copy mode sends the same bytes every loop). So the check does not trust
 * the sender's idea of where a loop starts, and it sees drift however large:
 * - regressions: packets whose DTS is not above the previous one's (per track);
 * - largest gap: the largest DTS step minus the track's usual step (its median),
 *   i.e. the silence or stillness a boundary adds;
 * - drift: at loop k, (audio start − video start) minus the same difference in
 *   the file; it stays 0 when audio and video stay in step.
 */
import { run } from './media.js';

export interface ProbedPacket {
  readonly dtsMs: number;
  readonly hash: string;
}

export interface ProbedTracks {
  readonly video: readonly ProbedPacket[];
  readonly audio: readonly ProbedPacket[];
}

export interface TrackVerdict {
  readonly packets: number;
  readonly regressions: number;
  /** The track's usual DTS step (median), ms. */
  readonly frameMs: number;
  /** Largest DTS step minus frameMs, ms (0 when every step is the usual one). */
  readonly largestGapMs: number;
  /** Loop starts recognised in the received packets. */
  readonly loopStarts: number;
}

export interface LoopVerdict {
  readonly video: TrackVerdict | null;
  readonly audio: TrackVerdict | null;
  /** Loops seen completely (both tracks' starts, when both exist). */
  readonly loops: number;
  /** Largest |drift| over all loops seen, ms; 0 with a single track. */
  readonly maxDriftMs: number;
  /** Drift at the last loop seen, ms (signed). */
  readonly lastDriftMs: number;
}

interface FfprobePacketsJson {
  streams?: { index: number; codec_type?: string }[];
  packets?: { stream_index: number; dts_time?: string; data_hash?: string }[];
}

/**
 * ffprobe's packets (DTS and a CRC32 of the data) of a file or a live URL.
 * For a URL, `seconds` bounds how long it reads.
 */
export async function probeTracks(input: string, seconds?: number, graceMs = 20_000): Promise<ProbedTracks> {
  const args = ['-v', 'error'];
  if (seconds !== undefined) args.push('-rw_timeout', String((seconds * 1000 + graceMs) * 1000), '-read_intervals', `%+${seconds}`);
  args.push('-show_streams', '-show_packets', '-show_data_hash', 'CRC32', '-show_entries', 'stream=index,codec_type:packet=stream_index,dts_time,data_hash', '-of', 'json', input);
  const stdout = await run('ffprobe', args, (seconds ?? 30) * 1000 + graceMs);
  const json = JSON.parse(stdout) as FfprobePacketsJson;
  const of = (type: string): ProbedPacket[] => {
    const stream = (json.streams ?? []).find((s) => s.codec_type === type);
    if (stream === undefined) return [];
    return (json.packets ?? [])
      .filter((p) => p.stream_index === stream.index && p.dts_time !== undefined && p.data_hash !== undefined)
      .map((p) => ({ dtsMs: Number(p.dts_time) * 1000, hash: p.data_hash ?? '' }));
  };
  return { video: of('video'), audio: of('audio') };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor(s.length / 2)] ?? 0);
}

/**
 * The file packet that marks a loop start: the first one at DTS >= 0. Earlier
 * ones (the AAC encoder's priming frame, hidden by the edit list) may be
 * dropped by a sender that loops cleanly.
 */
function markIndex(file: readonly ProbedPacket[]): number {
  const i = file.findIndex((p) => p.dtsMs >= 0);
  return i < 0 ? 0 : i;
}

/** Receiver indexes where the file's mark packet and the one after it appear in a row. */
export function loopStarts(received: readonly ProbedPacket[], file: readonly ProbedPacket[]): number[] {
  const m = markIndex(file);
  const a = file[m];
  const b = file[m + 1];
  if (a === undefined) return [];
  const starts: number[] = [];
  for (let i = 0; i < received.length; i++) {
    if (received[i]?.hash !== a.hash) continue;
    if (b !== undefined && received[i + 1] !== undefined && received[i + 1]?.hash !== b.hash) continue;
    starts.push(i);
  }
  return starts;
}

function trackVerdict(received: readonly ProbedPacket[], starts: readonly number[]): TrackVerdict {
  const steps: number[] = [];
  let regressions = 0;
  for (let i = 1; i < received.length; i++) {
    const step = (received[i]?.dtsMs ?? 0) - (received[i - 1]?.dtsMs ?? 0);
    if (step <= 0) regressions += 1;
    steps.push(step);
  }
  const frameMs = median(steps);
  const largest = steps.length === 0 ? 0 : Math.max(...steps);
  return { packets: received.length, regressions, frameMs, largestGapMs: Math.max(0, largest - frameMs), loopStarts: starts.length };
}

export function judgeLoops(received: ProbedTracks, file: ProbedTracks): LoopVerdict {
  const vStarts = received.video.length > 0 ? loopStarts(received.video, file.video) : [];
  const aStarts = received.audio.length > 0 ? loopStarts(received.audio, file.audio) : [];
  const video = received.video.length > 0 ? trackVerdict(received.video, vStarts) : null;
  const audio = received.audio.length > 0 ? trackVerdict(received.audio, aStarts) : null;
  if (video === null || audio === null) {
    return { video, audio, loops: Math.max(vStarts.length, aStarts.length), maxDriftMs: 0, lastDriftMs: 0 };
  }
  const fileOffset = (file.audio[markIndex(file.audio)]?.dtsMs ?? 0) - (file.video[markIndex(file.video)]?.dtsMs ?? 0);
  const vAt = vStarts.map((i) => received.video[i]?.dtsMs ?? 0);
  const aAt = aStarts.map((i) => received.audio[i]?.dtsMs ?? 0);
  // Pair loops by order from the first video start that has an audio start
  // after it within one loop: pairing by nearest time would wrap round
  // once drift exceeds half a loop and hide it.
  const period = vAt.length > 1 ? ((vAt[vAt.length - 1] ?? 0) - (vAt[0] ?? 0)) / (vAt.length - 1) : Infinity;
  let ai = aAt.findIndex((t) => t >= (vAt[0] ?? 0) + fileOffset - period / 2);
  let maxDrift = 0;
  let lastDrift = 0;
  let loops = 0;
  for (let vi = 0; vi < vAt.length && ai >= 0 && ai < aAt.length; vi++, ai++) {
    const drift = (aAt[ai] ?? 0) - (vAt[vi] ?? 0) - fileOffset;
    maxDrift = Math.max(maxDrift, Math.abs(drift));
    lastDrift = drift;
    loops += 1;
  }
  return { video, audio, loops, maxDriftMs: maxDrift, lastDriftMs: lastDrift };
}
