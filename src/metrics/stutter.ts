/**
 * The one definition of stutter, used by the benchmark's receivers now and by
 * the service's own metrics later. Pure: samples in, seconds out.
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
 * Judges one track's packets (in arrival order) against real time.
 * `frameDurationSeconds` is the nominal frame duration of the stream's video
 * (1/fps); the tolerance is two of them.
 */
export function stutterReport(
  samples: readonly StutterSample[],
  frameDurationSeconds: number,
  options: StutterOptions = {},
): StutterReport {
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
  const tolerance = 2 * frameDurationSeconds;
  const first = samples[0];
  if (first === undefined) {
    return { stutterSeconds: 0, stalls: 0, longestStallSeconds: 0, observedSeconds: 0, toleranceSeconds: tolerance };
  }

  const wall0 = first.wallSeconds;
  // media = max(dts + offset) - dts0; offset moves only at a timeline reset.
  let offset = 0;
  let media = 0;
  let lagAtMedia = 0; // lag at the last arrival that brought new media
  let ref = 0;
  let stutter = 0;
  let stalls = 0;
  let longest = 0;
  let current = 0; // length of the stall in progress, 0 when none
  let lastWall = wall0;

  // Lag only rises between arrivals, so checking it at each arrival (and at
  // the end) sees every peak exactly.
  const judge = (wall: number): void => {
    const lag = Math.max(lagAtMedia, wall - wall0 - (media + packetDuration));
    if (lag > ref + tolerance + EPSILON_SECONDS) {
      const pushed = lag - (ref + tolerance);
      if (current === 0) stalls++;
      current += pushed;
      longest = Math.max(longest, current);
      stutter += pushed;
      ref = lag - tolerance;
    }
  };

  for (const s of samples) {
    if (!Number.isFinite(s.wallSeconds) || !Number.isFinite(s.dtsSeconds)) {
      throw new RangeError(`samples must have finite wallSeconds and dtsSeconds, got ${JSON.stringify(s)}`);
    }
    if (s.wallSeconds < lastWall) throw new RangeError('samples must be in arrival order (wallSeconds never decreasing)');
    lastWall = s.wallSeconds;
    let at = s.dtsSeconds - first.dtsSeconds + offset;
    if (at < media - resetSeconds) {
      offset += media - at;
      at = media;
    }
    // The wait up to this arrival, judged on what had arrived before it.
    judge(s.wallSeconds);
    // A repeat or an overlap brings nothing to play and changes nothing else.
    if (at > media || s === first) {
      // New media: from now on the stream is exactly as late as this packet.
      media = at;
      lagAtMedia = s.wallSeconds - wall0 - media;
      judge(s.wallSeconds);
      current = 0;
      if (lagAtMedia < ref) ref = lagAtMedia;
    }
  }

  const end = Math.max(options.endWallSeconds ?? lastWall, lastWall);
  judge(end);
  return {
    stutterSeconds: stutter,
    stalls,
    longestStallSeconds: longest,
    observedSeconds: end - wall0,
    toleranceSeconds: tolerance,
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
