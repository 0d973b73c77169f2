/**
 * Proof of flow for one channel's output, and its stall watchdog: what the
 * origin really received, and when. Fed with each batch as it reaches the
 * kernel's socket (flushed), and asked by the host's sampler (judge, then
 * stalledFor). Pure: times come in as arguments, so a test drives it with
 * a fake clock.
 *
 * Owns: the output's position, the receivers' stutter rule applied to it
 * (media/stutter.ts), and the time the position last moved. Imports
 * media/stutter.ts only.
 */
import { StutterJudge } from '../media/stutter.js';

export class FlowWatch {
  readonly #stutter: StutterJudge;
  readonly #stallTimeoutMs: number;
  /** The latest instant judged: a late flush never goes back before a sample (both read performance.now()). */
  #judgedAtMs = 0;
  /** Output time of the last media in the kernel, ms; -1 before the first. */
  #positionMs = -1;
  /** Wall ms when the position last moved forward. */
  #movedAtMs = 0;
  #stalls = 0;

  /**
   * @param frameDurationSeconds the tolerance of the stutter rule is two of these
   * @param stallTimeoutMs how long the position may stand still before the output counts as stalled
   */
  constructor(frameDurationSeconds: number, stallTimeoutMs: number) {
    this.#stutter = new StutterJudge(frameDurationSeconds);
    this.#stallTimeoutMs = stallTimeoutMs;
  }

  /** Output time of the last media the origin's socket took, ms; -1 before the first. */
  get positionMs(): number {
    return this.#positionMs;
  }

  get lagSeconds(): number {
    return this.#stutter.lagSeconds;
  }

  get stutterSeconds(): number {
    return this.#stutter.stutterSeconds;
  }

  /** Stalls found so far. */
  get stalls(): number {
    return this.#stalls;
  }

  /** A batch ending at output time `mediaMs` reached the kernel at `wallMs`. */
  flushed(wallMs: number, mediaMs: number): void {
    this.#judgedAtMs = Math.max(this.#judgedAtMs, wallMs);
    this.#stutter.arrive(this.#judgedAtMs / 1000, mediaMs / 1000);
    if (mediaMs > this.#positionMs) {
      this.#positionMs = mediaMs;
      this.#movedAtMs = wallMs;
    }
  }

  /** Judges stutter up to `nowMs`: a stall in progress shows now, not only when media comes back. */
  judge(nowMs: number): void {
    this.#judgedAtMs = Math.max(this.#judgedAtMs, nowMs);
    this.#stutter.judgeAt(this.#judgedAtMs / 1000);
  }

  /**
   * How long the output has stood still, in ms, when that is past the stall
   * timeout (and counts one stall); null otherwise. `waiting`: the output
   * has nothing to send by design (a relay between sources, which its own
   * watchdogs judge), so standing still is not a stall and the clock restarts.
   */
  stalledFor(nowMs: number, waiting: boolean): number | null {
    if (waiting) this.#movedAtMs = nowMs;
    const stillMs = nowMs - this.#movedAtMs;
    if (stillMs <= this.#stallTimeoutMs) return null;
    this.#stalls += 1;
    return stillMs;
  }
}
