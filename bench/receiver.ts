/**
 * An independent receiver: ffprobe plays a channel from the origin's RTMP URL
 * like any viewer, and prints every packet as it arrives (line-buffered by
 * `stdbuf -oL`). Arrival times are taken here, when each line comes in; the
 * judgement (stutter, DTS regressions) uses nothing from the code under test.
 */
import type { Readable } from 'node:stream';
import { StutterJudge, stutterReport, type StutterReport, type StutterSample } from '../src/media/stutter.js';
import { spawnChild, type Child } from './children.js';
import { median } from './stats.js';

type Track = 'video' | 'audio';

export interface TrackVerdict {
  readonly packets: number;
  /** Packets whose DTS did not move forward from the previous packet of the track. */
  readonly dtsRegressions: number;
  /** Forward DTS steps longer than the stutter tolerance (holes in the media timeline). */
  readonly dtsGaps: number;
  readonly stutter: StutterReport;
  /** Each stall: when the packet that ended it arrived (seconds from the window's start) and its length, ms. */
  readonly stallsAt: readonly StallAt[];
}

export interface StallAt {
  readonly atSeconds: number;
  readonly ms: number;
}

/**
 * Where the stalls of one track were: the same judge as stutterReport, folded
 * packet by packet, noting when the count of stalls or their time grows.
 */
function stallsAt(samples: readonly StutterSample[], frameDurationSeconds: number, packetDurationSeconds: number, endSeconds: number, t0Seconds: number): StallAt[] {
  const judge = new StutterJudge(frameDurationSeconds, { packetDurationSeconds });
  const out: { atSeconds: number; ms: number }[] = [];
  const step = (wallSeconds: number, judgeIt: () => void): void => {
    const stalls = judge.stalls;
    const before = judge.stutterSeconds;
    judgeIt();
    const grown = (judge.stutterSeconds - before) * 1000;
    if (grown <= 0) return;
    const last = out[out.length - 1];
    if (judge.stalls > stalls || last === undefined) out.push({ atSeconds: wallSeconds, ms: grown });
    else {
      last.atSeconds = wallSeconds;
      last.ms += grown;
    }
  };
  for (const s of samples) step(s.wallSeconds, () => judge.arrive(s.wallSeconds, s.dtsSeconds));
  // Silence up to the end of listening, as stutterReport judges it.
  step(endSeconds, () => judge.judgeAt(endSeconds));
  return out.map((x) => ({ atSeconds: Math.round((x.atSeconds - t0Seconds) * 1000) / 1000, ms: Math.round(x.ms) }));
}

export interface ReceiverVerdict {
  readonly stream: string;
  /** Wall seconds from spawn to the first packet (connect, GOP cache, ffprobe's probing). */
  readonly firstPacketSeconds: number | null;
  /** Wall seconds judged, first packet to the end. */
  readonly observedSeconds: number;
  /**
   * The stream's stutter: the worse of its two tracks. A receiver that got no
   * video at all counts its whole listening time.
   */
  readonly stutterSeconds: number;
  readonly stalls: number;
  readonly video: TrackVerdict | null;
  readonly audio: TrackVerdict | null;
}

/** ffprobe's compact packet lines ("video|12.345000"), however the pipe splits them. */
export class PacketLines {
  #partial = '';

  /** Calls `each` for every complete audio or video line in `chunk` with a DTS. */
  feed(chunk: string, each: (track: Track, dtsSeconds: number) => void): void {
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      // compact, no keys, no section name: "video|12.345000"
      const [kind, dts] = line.split('|');
      if ((kind !== 'video' && kind !== 'audio') || dts === undefined || dts === 'N/A') continue;
      const d = Number(dts);
      if (Number.isFinite(d)) each(kind, d);
    }
  }

  /** A new ffprobe session: a line cut short by the last one is dropped. */
  reset(): void {
    this.#partial = '';
  }
}

export class Receiver {
  readonly stream: string;
  readonly #child: Child;
  readonly #spawnedAt = performance.now() / 1000;
  readonly #samples: Record<Track, StutterSample[]> = { video: [], audio: [] };
  readonly #lines = new PacketLines();
  /** When observation ended (seconds, performance clock); null while listening. */
  #endAt: number | null = null;

  /** ffprobe's pid (stdbuf and setpriv exec into it), for its CPU. */
  get pid(): number {
    return this.#child.pid;
  }

  constructor(stream: string, url: string) {
    this.stream = stream;
    this.#child = spawnChild(
      'stdbuf',
      ['-oL', 'ffprobe', '-v', 'quiet', '-show_entries', 'packet=codec_type,dts_time', '-of', 'compact=p=0:nk=1', url],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const out = this.#child.process.stdout as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.#onData(chunk));
  }

  /**
   * Ends observation now: lines that come later are not judged. The window
   * is over, and ffprobe's last lines before it exits (the finish's SIGTERM)
   * can come late: judged, they were stalls of every receiver at the end.
   */
  endObservation(): void {
    this.#endAt ??= performance.now() / 1000;
  }

  #onData(chunk: string): void {
    if (this.#endAt !== null) return;
    const now = performance.now() / 1000;
    this.#lines.feed(chunk, (track, dtsSeconds) => this.#samples[track].push({ wallSeconds: now, dtsSeconds }));
  }

  /** Stops listening without judging; for cleanup. */
  async close(): Promise<void> {
    await this.#child.stop(2_000);
  }

  /** Stops listening and judges what arrived; stalls are placed in time from `t0Seconds` (performance clock). */
  async finish(frameDurationSeconds: number, t0Seconds: number): Promise<ReceiverVerdict> {
    this.endObservation();
    const end = this.#endAt ?? performance.now() / 1000;
    await this.#child.stop(2_000);
    const judge = (samples: StutterSample[]): TrackVerdict | null => {
      if (samples.length === 0) return null;
      let regressions = 0;
      let gaps = 0;
      for (let i = 1; i < samples.length; i++) {
        const step = (samples[i]?.dtsSeconds ?? 0) - (samples[i - 1]?.dtsSeconds ?? 0);
        if (step <= 0) regressions++;
        else if (step > 2 * frameDurationSeconds) gaps++;
      }
      // What one packet carries (a video frame, 1024 AAC samples): the typical DTS step of the track.
      const steps = samples.slice(1).map((s, i) => s.dtsSeconds - (samples[i]?.dtsSeconds ?? 0)).filter((d) => d > 0);
      const packetDurationSeconds = median(steps) ?? frameDurationSeconds;
      return {
        packets: samples.length,
        dtsRegressions: regressions,
        dtsGaps: gaps,
        stutter: stutterReport(samples, frameDurationSeconds, { endWallSeconds: end, packetDurationSeconds }),
        stallsAt: stallsAt(samples, frameDurationSeconds, packetDurationSeconds, end, t0Seconds),
      };
    };
    const video = judge(this.#samples.video);
    const audio = judge(this.#samples.audio);
    const first = [this.#samples.video[0], this.#samples.audio[0]]
      .filter((s): s is StutterSample => s !== undefined)
      .reduce<number | null>((m, s) => (m === null ? s.wallSeconds : Math.min(m, s.wallSeconds)), null);
    const tracks = [video, audio].filter((t): t is TrackVerdict => t !== null);
    return {
      stream: this.stream,
      firstPacketSeconds: first === null ? null : first - this.#spawnedAt,
      observedSeconds: first === null ? 0 : end - first,
      stutterSeconds: video === null ? end - this.#spawnedAt : Math.max(...tracks.map((t) => t.stutter.stutterSeconds)),
      stalls: Math.max(0, ...tracks.map((t) => t.stutter.stalls)),
      video,
      audio,
    };
  }
}
