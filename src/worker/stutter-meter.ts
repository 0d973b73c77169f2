/**
 * Output timing of one pipeline, measured inside the worker without decoding.
 * Pure: samples in, numbers out; the pipeline feeds it and tests drive it.
 *
 * A sample is (wall time, pipeline position). The position is what the sinks
 * have rendered: GstBaseSink answers it from the clock but never beyond the
 * last buffer it has seen, so a pipeline that receives nothing shows a
 * position that stands still (checked on a live source whose publisher was
 * SIGSTOPped), and one that runs in real time shows a position that moves
 * with the wall clock.
 *
 * Stutter follows the one definition in src/metrics/stutter.ts, applied to
 * these samples as if each were a packet arriving with DTS = position:
 * lag = (wall - wall0) - media, a band [ref, ref + 2 frames] that follows lag
 * down freely and up only at a cost, and every second it is pushed up is a
 * second of stutter. That function judges a whole array at once; a channel
 * runs for weeks, so this is the same rule kept as running state (test/
 * stutter-meter.test.ts checks both give the same numbers).
 *
 * Resolution: samples come every ~100 ms, so a freeze that starts and ends
 * between two samples (and is then caught up by the clock) is not seen. The
 * tolerance is two frames (80 ms at 25 fps); freezes of a few hundred ms and
 * more, which viewers notice, are.
 */

/** Same meaning as StutterOptions.resetSeconds in src/metrics/stutter.ts. */
const defaultResetSeconds = 1;
const EPSILON_SECONDS = 1e-9;

export class StutterMeter {
  readonly toleranceSeconds: number;
  readonly #packetDuration: number;
  readonly #resetSeconds: number;
  #wall0: number | null = null;
  #pos0 = 0;
  #offset = 0;
  #media = 0;
  #lagAtMedia = 0;
  #ref = 0;
  #stutter = 0;
  #lag = 0;
  #lastWall = 0;

  /**
   * @param frameDurationSeconds nominal frame duration (1/fps); the tolerance is two of them,
   *   and a sample's media is taken to keep playing for one more frame.
   */
  constructor(frameDurationSeconds: number, resetSeconds = defaultResetSeconds) {
    if (!Number.isFinite(frameDurationSeconds) || frameDurationSeconds <= 0) {
      throw new RangeError(`frameDurationSeconds must be a positive number, got ${frameDurationSeconds}`);
    }
    this.toleranceSeconds = 2 * frameDurationSeconds;
    this.#packetDuration = frameDurationSeconds;
    this.#resetSeconds = resetSeconds;
  }

  /** Total stall time so far, seconds. */
  get stutterSeconds(): number {
    return this.#stutter;
  }

  /** How far output runs behind wall time since the first sample, seconds, >= 0. */
  get outputLagSeconds(): number {
    return Math.max(0, this.#lag);
  }

  #judge(wall: number): void {
    const wall0 = this.#wall0 ?? wall;
    const lag = Math.max(this.#lagAtMedia, wall - wall0 - (this.#media + this.#packetDuration));
    if (lag > this.#ref + this.toleranceSeconds + EPSILON_SECONDS) {
      this.#stutter += lag - (this.#ref + this.toleranceSeconds);
      this.#ref = lag - this.toleranceSeconds;
    }
  }

  /**
   * One observation. `positionSeconds` null means unknown (the query failed):
   * no new media, so the wait is judged like silence. Wall time must not go back.
   */
  sample(wallSeconds: number, positionSeconds: number | null): void {
    if (this.#wall0 === null) {
      if (positionSeconds === null) return; // nothing to anchor on yet
      this.#wall0 = wallSeconds;
      this.#pos0 = positionSeconds;
      this.#lastWall = wallSeconds;
      this.#lag = 0;
      return;
    }
    if (wallSeconds < this.#lastWall) throw new RangeError('samples must be in wall-clock order');
    this.#lastWall = wallSeconds;
    this.#judge(wallSeconds);
    if (positionSeconds !== null) {
      let at = positionSeconds - this.#pos0 + this.#offset;
      if (at < this.#media - this.#resetSeconds) {
        // A position that jumped back is a new timeline, not a rewind to replay.
        this.#offset += this.#media - at;
        at = this.#media;
      }
      if (at > this.#media) {
        this.#media = at;
        this.#lagAtMedia = wallSeconds - this.#wall0 - at;
        this.#judge(wallSeconds);
        if (this.#lagAtMedia < this.#ref) this.#ref = this.#lagAtMedia;
      }
    }
    this.#lag = wallSeconds - this.#wall0 - this.#media;
  }
}
