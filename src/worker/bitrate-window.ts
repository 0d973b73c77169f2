/**
 * A push target's bitrate: bits per second over the last few seconds, from
 * its cumulative byte count sampled at each heartbeat. Why a window rather
 * than the rate since the last sample: RTMP batches and SRT packets leave in
 * bursts (a keyframe is many times a frame's size), so a one-second figure
 * swings with where the GOP falls; five seconds holds two or more GOPs.
 *
 * Pure: the caller gives the time, so tests need no clock.
 */

/** Default window, ms. */
export const bitrateWindowMs = 5000;

export class BitrateWindow {
  readonly #windowMs: number;
  /** (time ms, cumulative bytes), oldest first; the first one may be older than the window, to span it. */
  readonly #samples: { atMs: number; bytes: number }[] = [];

  /** @param windowMs span of the average, ms (default 5000) */
  constructor(windowMs: number = bitrateWindowMs) {
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be positive, got ${windowMs}`);
    this.#windowMs = windowMs;
  }

  /**
   * Records the cumulative byte count at `atMs` and returns bits per second
   * over the window that ends there (0 until two samples lie apart). A count
   * that went back (a new session counting from 0) starts the window afresh.
   */
  sample(atMs: number, bytes: number): number {
    const s = this.#samples;
    const last = s[s.length - 1];
    if (last !== undefined && (bytes < last.bytes || atMs < last.atMs)) s.length = 0;
    s.push({ atMs, bytes });
    // Keep one sample at or before the window's start, so the average spans the whole window.
    while (s.length > 2 && (s[1]?.atMs ?? Infinity) <= atMs - this.#windowMs) s.shift();
    const first = s[0];
    if (first === undefined || atMs - first.atMs <= 0) return 0;
    return Math.round(((bytes - first.bytes) * 8 * 1000) / (atMs - first.atMs));
  }
}
