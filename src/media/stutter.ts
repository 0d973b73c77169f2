/**
 * The one definition of stutter, used by the benchmark's receivers and by the
 * worker's own meter (src/worker/channel-pipeline.ts). Pure: samples in,
 * seconds out; it imports nothing, which is why it sits in media/ below the
 * worker rather than in metrics/ (which reads the domain above it).
 *
 * A stream stutters while its output runs behind real time by more than a
 * tolerance of two frame durations, or has had no media to play for longer
 * than that. Measured on one track of what a receiver gets: for each packet,
 * the wall time it arrived and its DTS.
 *
 * At an arrival, lag = (wall - wall0) - media, where media is how far the
 * media timeline has got (seconds of DTS since the first packet). A stream
 * delivered exactly in real time keeps lag constant; late packets make it
 * grow; a burst (the origin's GOP cache at connect, a publisher catching up)
 * makes it shrink. Between arrivals, the last packet still has its own
 * duration to play; once that has run out the stream is delivering nothing
 * and lag grows with the wall clock:
 *
 *   lag(t) = max(lag at the last arrival, (t - wall0) - (media + packetDuration))
 *
 * So a silent stream is, by construction, falling behind; but a single frame
 * that comes 45 ms late at 25 fps (an 85 ms gap between arrivals, which
 * timer-paced publishers produce every second or so) is 45 ms behind, not
 * 85 ms, and a player with two frames of buffer does not notice it.
 *
 * The reference is the best lag seen, but it is not fixed forever:
 *
 * - It follows lag *down* for free. The first packets may burst, and a stream
 *   that gets ahead of real time is never a stutter.
 * - It follows lag *up* only beyond the tolerance, and every second it is
 *   pushed up is a second of stutter. So lag always sits in the band
 *   [ref, ref + tolerance], and a stream that fell behind once and then runs
 *   in real time again stops counting: after a 1 s freeze the viewer has seen
 *   one stall of about 1 s, not a stall that lasts forever.
 *
 * This is the total stall time of a live player that keeps at most
 * `tolerance` of media buffered (low-latency players skip ahead when they
 * have more) and freezes while its buffer is empty. Hence:
 *
 * - a steady stream, with packets up to one frame late, gives 0;
 * - packets that arrive D late (a freeze, with or without a catch-up burst
 *   afterwards) give D - tolerance, counted once;
 * - a stream delivered at rate r < 1 of real time gives about (1 - r) per
 *   second once its buffer is spent: it grows with the length of the run;
 * - a stream that goes silent counts until `endWallSeconds`, if given.
 *
 * Timestamps that do not move forward are not media: media is the largest
 * DTS seen so far, so a repeated or overlapping packet at a loop boundary adds
 * nothing (it is counted apart, as a DTS regression, by whoever reads the
 * same receiver). A backward jump larger than `resetSeconds` is a timeline
 * reset (a publisher restarted, a new segment with new timestamps): the
 * timeline is re-anchored so that media continues from where it was, instead
 * of waiting for DTS to climb past the old maximum.
 */

/**
 * Float slack for "more than the tolerance": arrivals exactly two frames
 * apart must not count 1e-14 s of stutter. Far below any clock's resolution.
 */
const EPSILON_SECONDS = 1e-9;

export interface StutterSample {
  /** When the packet arrived, seconds on any monotonic wall clock. */
  readonly wallSeconds: number;
  /** Its decoding timestamp, seconds. */
  readonly dtsSeconds: number;
}

export interface StutterOptions {
  /**
   * Wall time (same clock as the samples) when observation ended. Silence
   * between the last packet and this instant counts like any other gap.
   * Default: the last sample's arrival, i.e. no tail is judged.
   */
  readonly endWallSeconds?: number;
  /**
   * A backward DTS jump larger than this, in seconds, is a timeline reset
   * rather than an overlap. Default 1 s.
   */
  readonly resetSeconds?: number;
  /**
   * How much media one packet of this track carries, seconds: one frame for
   * video, e.g. 1024/48000 for AAC at 48 kHz. Default `frameDurationSeconds`.
   */
  readonly packetDurationSeconds?: number;
}

export interface StutterReport {
  /** Total stall time, seconds. */
  readonly stutterSeconds: number;
  /** How many separate times the stream went beyond the tolerance. */
  readonly stalls: number;
  /** The longest single stall, seconds. */
  readonly longestStallSeconds: number;
  /** Wall seconds judged: first arrival to the end of observation. */
  readonly observedSeconds: number;
  /** The tolerance used: two frame durations, seconds. */
  readonly toleranceSeconds: number;
}

/**
 * The definition as running state: packets go in one at a time, in arrival
 * order, and the numbers are current after each. A channel runs for weeks,
 * so the worker keeps one of these per channel and feeds it each batch as it
 * reaches the kernel (src/worker/channel-pipeline.ts); the benchmark's
 * receivers fold their packet lists through the same class (stutterReport).
 * `frameDurationSeconds` is the nominal frame duration of the stream's video
 * (1/fps); the tolerance is two of them.
 */
export class StutterJudge {
  readonly toleranceSeconds: number;
  readonly #packetDuration: number;
  readonly #resetSeconds: number;
  #wall0: number | null = null;
  #dts0 = 0;
  /** media = max(dts + offset) - dts0; offset moves only at a timeline reset. */
  #offset = 0;
  #media = 0;
  /** Lag at the last arrival that brought new media. */
  #lagAtMedia = 0;
  #ref = 0;
  #stutter = 0;
  #stalls = 0;
  #longest = 0;
  /** Length of the stall in progress, 0 when none. */
  #current = 0;
  #lastWall = 0;

  constructor(frameDurationSeconds: number, options: Omit<StutterOptions, 'endWallSeconds'> = {}) {
    if (!Number.isFinite(frameDurationSeconds) || frameDurationSeconds <= 0) {
      throw new RangeError(`frameDurationSeconds must be a positive number, got ${frameDurationSeconds}`);
    }
    const resetSeconds = options.resetSeconds ?? 1;
    if (!Number.isFinite(resetSeconds) || resetSeconds <= 0) {
      throw new RangeError(`options.resetSeconds must be a positive number, got ${resetSeconds}`);
    }
    const packetDuration = options.packetDurationSeconds ?? frameDurationSeconds;
    if (!Number.isFinite(packetDuration) || packetDuration <= 0) {
      throw new RangeError(`options.packetDurationSeconds must be a positive number, got ${packetDuration}`);
    }
    this.toleranceSeconds = 2 * frameDurationSeconds;
    this.#packetDuration = packetDuration;
    this.#resetSeconds = resetSeconds;
  }

  /** Total stall time so far, seconds. */
  get stutterSeconds(): number {
    return this.#stutter;
  }

  /** How many separate times the stream went beyond the tolerance. */
  get stalls(): number {
    return this.#stalls;
  }

  /** The longest single stall, seconds. */
  get longestStallSeconds(): number {
    return this.#longest;
  }

  /** Wall seconds from the first arrival to the latest instant judged. */
  get observedSeconds(): number {
    return this.#wall0 === null ? 0 : this.#lastWall - this.#wall0;
  }

  /** How far the media runs behind wall time since the first arrival, as of the latest instant judged, seconds, >= 0. */
  get lagSeconds(): number {
    return this.#wall0 === null ? 0 : Math.max(0, this.#lastWall - this.#wall0 - this.#media);
  }

  /**
   * Judges the wait up to `wallSeconds` on what has arrived so far. Lag only
   * rises between arrivals, so judging at each arrival and at the end of
   * observation sees every peak exactly; judging more often (a metric's
   * sampler) changes nothing but how soon a stall in progress shows.
   */
  judgeAt(wallSeconds: number): void {
    if (this.#wall0 === null) return;
    if (!Number.isFinite(wallSeconds)) throw new RangeError(`wallSeconds must be finite, got ${wallSeconds}`);
    if (wallSeconds < this.#lastWall) return; // an earlier instant was judged already
    this.#lastWall = wallSeconds;
    const lag = Math.max(this.#lagAtMedia, wallSeconds - this.#wall0 - (this.#media + this.#packetDuration));
    if (lag > this.#ref + this.toleranceSeconds + EPSILON_SECONDS) {
      const pushed = lag - (this.#ref + this.toleranceSeconds);
      if (this.#current === 0) this.#stalls++;
      this.#current += pushed;
      this.#longest = Math.max(this.#longest, this.#current);
      this.#stutter += pushed;
      this.#ref = lag - this.toleranceSeconds;
    }
  }

  /** One packet: when it arrived and its DTS, seconds. Arrivals must not go back in time. */
  arrive(wallSeconds: number, dtsSeconds: number): void {
    if (!Number.isFinite(wallSeconds) || !Number.isFinite(dtsSeconds)) {
      throw new RangeError(`samples must have finite wallSeconds and dtsSeconds, got ${JSON.stringify({ wallSeconds, dtsSeconds })}`);
    }
    if (this.#wall0 === null) {
      this.#wall0 = wallSeconds;
      this.#lastWall = wallSeconds;
      this.#dts0 = dtsSeconds;
      return; // media 0, lag 0: the anchor
    }
    if (wallSeconds < this.#lastWall) throw new RangeError('samples must be in arrival order (wallSeconds never decreasing)');
    let at = dtsSeconds - this.#dts0 + this.#offset;
    if (at < this.#media - this.#resetSeconds) {
      this.#offset += this.#media - at;
      at = this.#media;
    }
    // The wait up to this arrival, judged on what had arrived before it.
    this.judgeAt(wallSeconds);
    // A repeat or an overlap brings nothing to play and changes nothing else.
    if (at > this.#media) {
      // New media: from now on the stream is exactly as late as this packet.
      this.#media = at;
      this.#lagAtMedia = wallSeconds - this.#wall0 - at;
      this.judgeAt(wallSeconds);
      this.#current = 0;
      if (this.#lagAtMedia < this.#ref) this.#ref = this.#lagAtMedia;
    }
  }
}

/** Judges one track's packets (in arrival order) against real time: StutterJudge over a whole list. */
export function stutterReport(
  samples: readonly StutterSample[],
  frameDurationSeconds: number,
  options: StutterOptions = {},
): StutterReport {
  const judge = new StutterJudge(frameDurationSeconds, options);
  for (const s of samples) judge.arrive(s.wallSeconds, s.dtsSeconds);
  const last = samples[samples.length - 1];
  if (last !== undefined) judge.judgeAt(Math.max(options.endWallSeconds ?? last.wallSeconds, last.wallSeconds));
  return {
    stutterSeconds: judge.stutterSeconds,
    stalls: judge.stalls,
    longestStallSeconds: judge.longestStallSeconds,
    observedSeconds: judge.observedSeconds,
    toleranceSeconds: judge.toleranceSeconds,
  };
}

/** Total stall time of one track, seconds; see the file header for the definition. */
export function stutterSeconds(
  samples: readonly StutterSample[],
  frameDurationSeconds: number,
  options: StutterOptions = {},
): number {
  return stutterReport(samples, frameDurationSeconds, options).stutterSeconds;
}
